"""Golden corpus for the detectors: hostile strings that must be caught, legitimate ones that
must pass. Plain data, no logic, so other tests (the guard's) can reuse it.

Every number here is synthetic but checksum-valid: the IINs and BINs are the reference's
published examples, the cards are Luhn-valid test numbers, the IBANs pass mod-97, the
phones are in ranges the numbering plans allow (``+44 20 7946 …`` is Ofcom's drama range).

``HOSTILE`` entries are ``(detector value, text)``: the detector that must be among the hits.
"""

from __future__ import annotations

from typing import Final

JWT_EXAMPLE: Final = (
    "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9"
    ".eyJzdWIiOiAiNDIiLCAicm9sZSI6ICJvcGVyYXRvciJ9"
    ".c2lnbmF0dXJl"
)

HOSTILE: Final[list[tuple[str, str]]] = [
    # --- e-mail
    ("email", "john.doe@mail.kz"),
    ("email", "click_ivan.petrov@company.kz"),
    ("email", "support+ticket@example.com"),
    ("email", "иван.петров@почта.рф"),
    ("email", "ivan@пример.рф"),
    ("email", "aigerim\uff20mail.kz"),  # fullwidth @
    ("email", "user@xn--e1afmkfd.xn--p1ai"),
    # --- payment cards (Luhn; any brand)
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "2200 7000 0000 0009"),  # Mir
    ("card", "2204123456789015"),  # Mir, top of the range
    ("card", "2221 0000 0000 0009"),  # Mastercard 2-series
    ("card", "5555555555554444"),  # Mastercard
    ("card", "6200000000000005"),  # UnionPay, 16 digits
    ("card", "621234567890123457"),  # UnionPay, 18 digits
    ("card", "378282246310005"),  # Amex, 15 digits
    ("card", "TypeError_4111111111111111"),  # a card number in an exception type
    # --- Kazakhstan IIN, in every disguise
    ("kz_iin", "921029350851"),
    ("kz_iin", "061211600012"),
    ("kz_iin", "921 029 350 851"),
    ("kz_iin", "921-029-350-851"),
    ("kz_iin", "921.029.350.851"),
    ("kz_iin", "921 029-350.851"),
    ("kz_iin", "(921) 029 350 851"),
    ("kz_iin", "\uff19\uff12\uff11\uff10\uff12\uff19\uff13\uff15\uff10\uff18\uff15\uff11"),
    ("kz_iin", "9\u200b2\u200b1\u200b0\u200b2\u200b9\u200b3\u200b5\u200b0\u200b8\u200b5\u200b1"),
    ("kz_iin", "921\u00a0029\u2009350\u202f851"),  # NBSP, thin space, narrow NBSP
    ("kz_iin", "921\u00ad029\u2060350\ufeff851"),  # soft hyphen, word joiner, BOM
    ("kz_iin", "921\u2013029\u2014350\u2212851"),  # en dash, em dash, minus sign
    ("kz_iin", "\u0669\u0662\u0661\u0660\u0662\u0669\u0663\u0665\u0660\u0668\u0665\u0661"),
    ("kz_iin", "iin_921029350851"),  # an IIN as a field id
    ("kz_iin", "field_061211600012_error"),
    # --- Kazakhstan BIN
    ("kz_bin", "940140000385"),
    ("kz_bin", "990140004654"),
    ("kz_bin", "9901 4000 4654"),
    # --- Russia INN (10 and 12 digits) and SNILS
    ("ru_inn", "7707083893"),
    ("ru_inn", "500100732259"),
    ("ru_inn", "7707-083-893"),
    ("ru_snils", "112-233-445 95"),
    ("ru_snils", "11223344595"),
    ("ru_snils", "232-222-224 00"),  # weighted sum 100: check digits 00
    # --- phones
    ("phone", "+7 701 234 56 78"),
    ("phone", "8 (777) 123-45-67"),
    ("phone", "+7 (916) 123-45-67"),
    ("phone", "+77012345678"),
    ("phone", "8\u2011701\u2011234\u201156\u201178"),  # non-breaking hyphens
    ("phone", "+44 20 7946 0958"),
    ("phone", "+1 202 555 0123"),
    ("phone", "tel:+7-727-212-34-56"),  # Almaty landline
    # --- IBAN
    ("iban", "KZ18722S000012345678"),
    ("iban", "KZ18 722S 0000 1234 5678"),
    ("iban", "kz86125kzt5004100100"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432"),
    # --- IP addresses
    ("ip", "192.168.10.25"),
    ("ip", "client_ip_203.0.113.7"),
    ("ip", "2001:db8::ff00:42:8329"),
    ("ip", "fe80::1"),
    ("ip", "::ffff:192.0.2.1"),
    # --- secrets
    ("bearer", "Bearer abc.def"),
    ("bearer", "Authorization: Bearer 4f9c2a"),
    ("bearer", "basic dXNlcjpwYXNzd29yZA=="),
    ("jwt", JWT_EXAMPLE),
    ("jwt", f"token_{JWT_EXAMPLE}"),
    ("pem", "-----BEGIN RSA PRIVATE KEY-----"),
    ("pem", "-----BEGIN CERTIFICATE-----"),
    ("pem", "-----BEGIN OPENSSH PRIVATE KEY-----"),
    ("url_credentials", "https://user:pass@host/"),
    ("url_credentials", "ftp://admin:s3cr3t@files.example.kz/x"),
    ("url_credentials", "//svc:@10.0.0.5/"),
    # --- sensitive keys inside a string
    ("sensitive_key", "password=hunter2"),
    ("sensitive_key", "api_key=abc"),
    ("sensitive_key", '{"userEmail": "x"}'),
    # --- catch-alls
    ("digit_run", "123456789"),
    ("digit_run", "1 2 3 4 5 6 7 8 9"),
    ("digit_run", "contract_000123456789"),
    ("digit_run", "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19"),
    ("token", "3f2b8c1e1d2a4c3b9e8f0a1b2c3d4e5f"),
    ("token", "session_3F2B8C1E1D2A4C3B9E8F0A1B"),
    ("token", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("token", "dGhpc0lzQVRva2VuMTIzNDU2Nzg5MA"),
    ("token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("token", "Zx9-Qm2_Lp7vTk4-Rw8bNc3_Hy6dFg1"),
]

LEGIT: Final[list[str]] = [
    # the reference's list
    "invoice_create_clicked",
    "btn_save",
    "request_create",
    "step_2",
    "2.3.1",
    "iin_bin",
    "kz",
    "operator",
    "format",
    "/requests/:id/edit",
    # events, actions, forms and fields of the service-desk scenario
    "request_submit",
    "request_create_step_submit_clicked",
    "requestCreateStepSubmitClicked",
    "requestCreateStep2SubmitClicked",
    "btnSaveStep2Confirmation",
    "server_response_received",
    "search_filters",
    "service_desk_request",
    "iin_bin_field",
    "contract_number",
    "client_phone_field",
    "bin_lookup_opened",
    "field_error",
    "form_submit",
    "step_10_of_12",
    "attempt_3",
    "page_1_of_10",
    # code lists
    "required",
    "too_long",
    "server",
    "conflict",
    "success",
    "timeout",
    "needs-improvement",
    "long_task",
    "TTFB",
    "accountant",
    "desktop",
    "mobile",
    "Firefox",
    "division_north",
    "region_almaty",
    # versions, dates, times, zones, locales
    "1.12.0-rc.1",
    "v2.3.10_build_20261122",
    "ui_v2.14.0",
    "v10",
    "2026-11-22",
    "2026.11.22",
    "2026-11-22T10:30:00",
    "2026-W47",
    "report_2026_q3",
    "q3_2026",
    "08:00-18:00",
    "10:30:15",
    "Asia/Almaty",
    "Europe/Moscow",
    "kk-KZ",
    "ru-RU",
    # error classes, modules, routes, flags, sessions
    "TypeError",
    "ChunkLoadError",
    "ResizeObserver_loop_limit_exceeded",
    "HTTP_503",
    "module:checkout/form",
    "app.checkout.submit",
    "screen:request_form",
    "/requests/new",
    "/reports/weekly/:name",
    "feature_new_wizard",
    "exp_42_variant_b",
    "s_abcdefghjkmnpqrst",
    "s_kmnpqrstuvwxyzabcdefgh",
]

# A four-part version parses as an IPv4 address and is reported as one, on purpose: an
# address in a version field is indistinguishable from a leaked client address. The guard
# exempts ``ui_version`` from the IP detector instead (``policy.DETECTOR_EXEMPTIONS``).
VERSION_LIKE_IPS: Final[list[str]] = ["10.0.0.1", "1.2.3.4", "4.18.0.2"]
