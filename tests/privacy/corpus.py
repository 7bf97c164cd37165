"""Golden corpus for the detectors: hostile strings that must be caught, legitimate ones that
must pass. Plain data, no logic, so other tests (the guard's) can reuse it.

Every number here is synthetic but checksum-valid: the IINs and BINs are the reference's
published examples, the cards are Luhn-valid test numbers, the IBANs pass mod-97, the
phones are in ranges the numbering plans allow (``+44 20 7946 …`` is Ofcom's drama range).
The names are common given names and surnames, in the shapes identifiers give them.

``HOSTILE`` entries are ``(detector value, text)``: the detector that must be among the hits.
``LEGIT`` strings must pass every detector; ``SURNAMES`` must each be recognised on their own.
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
    # --- numbers split by the separators identifiers use: _ : / and the letter x
    ("kz_iin", "870412_300129"),
    ("kz_iin", "870412:300129"),
    ("kz_iin", "870412/300129"),
    ("kz_iin", "870412x300129"),
    ("kz_iin", "870412X300129"),
    ("kz_iin", "iin_921_029_350_851"),
    ("kz_iin", "case_870412_300129_open"),
    ("kz_iin", "users/921029/350851/edit"),
    ("kz_iin", "field:0612:1160:0012"),
    ("kz_iin", "9210x29350851"),
    ("kz_bin", "940140_000385"),
    ("kz_bin", "9901:4000:4654"),
    ("card", "4111_1111_1111_1111"),
    ("card", "5555:5555:5555:4444"),
    ("card", "2200/7000/0000/0009"),
    ("card", "4111x1111x1111x1111"),
    ("card", "378282_246310_005"),  # Amex, 4-6-5
    ("card", "pay_6200_0000_0000_0005_failed"),
    ("card", "4111111_111111111"),
    ("ru_snils", "112_233_445_95"),
    ("ru_snils", "snils:112:233:445:95"),
    ("ru_inn", "500100_732259"),
    ("phone", "8_777_123_45_67"),
    ("phone", "callback_8_701_234_56_78"),
    ("phone", "777_123_45_67"),
    ("phone", "8777:123:4567"),
    # --- Latin-script names: snake, kebab, camel, Title case, surname first, digit suffixes
    ("person_name", "Aidos_Nurlanov"),
    ("person_name", "aidos_nurlanov"),
    ("person_name", "aidos-nurlanov"),
    ("person_name", "AidosNurlanov"),
    ("person_name", "aidosNurlanov"),
    ("person_name", "AIDOS_NURLANOV"),
    ("person_name", "Nurlanov_Aidos"),
    ("person_name", "nurlanov.aidos"),
    ("person_name", "a.nurlanov"),
    ("person_name", "aidos_nurlanov_2"),
    ("person_name", "aidos.nurlanov1987"),
    ("person_name", "ivan-petrov"),
    ("person_name", "/users/ivan-petrov/edit"),
    ("person_name", "Ivan_Petrov"),
    ("person_name", "petrov_ivan"),
    ("person_name", "IvanPetrov"),
    ("person_name", "ivanpetrov"),
    ("person_name", "i.petrov"),
    ("person_name", "petrov"),
    ("person_name", "ivan"),
    ("person_name", "user:aigerim"),
    ("person_name", "assignee_aigerim_s"),
    ("person_name", "gulnara_1985"),
    ("person_name", "btn_assign_to_dinara"),
    ("person_name", "Zhaksylyk_Nurlanuly"),
    ("person_name", "aruzhan_serikkyzy"),
    ("person_name", "bakyt_uulu"),
    ("person_name", "Karimov_Alisher"),
    ("person_name", "dilnoza.rakhimova"),
    ("person_name", "Shevchenko_Taras"),
    ("person_name", "olga.kovalenko"),
    ("person_name", "anna_ivanovna"),
    ("person_name", "ivan_sergeevich"),
    ("person_name", "zhukovskaya_m"),
    ("person_name", "Tchaikovskiy"),
    ("person_name", "john_smith"),
    ("person_name", "JohnSmith"),
    ("person_name", "mary-johnson"),
    ("person_name", "Petrosyan_Armen"),
    ("person_name", "filter_by_tokayev"),
    ("person_name", "report_for_elena_2026_q3"),
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
    # digits with the separators identifiers use: dates, times, builds, sizes, ranges
    "2026_12_07",
    "2026_12_07_10_30",
    "20261207_103015",
    "20261207:103015",
    "build_20261207_1432",
    "build_20261122_103015_42",
    "date_range_20260101_20261231",
    "release_2026_11",
    "10:30",
    "10:30:15.250",
    "12/05",
    "12/05/2026",
    "12/05/2026_10:30",
    "1920x1080",
    "3840x2160",
    "1366x768_mobile",
    "viewport_375x812",
    "icon_24x24",
    "thumb_128x128",
    "grid_12x12",
    "v2.3.10_build_20261122",
    "order_v2_step_3",
    "step_2_of_5",
    "page_10_of_120",
    "retry_on_500_502_503_504",
    "err_401_403_404",
    "codes_400_401_403_404_409",
    "http_500_502_503_504_505",
    "port_8080:8443",
    "localhost:8080",
    "8080:8443:9090",
    "api/v2/orders/:id",
    "module:checkout/step_3",
    "exp_2026_q3_variant_b",
    "ab_test_0042_variant_a",
    "seq_001_002_003",
    "sku_123_456_789",
    "chunk_742_js",
    "Asia/Tashkent",
    # technical words that look close to names
    "login",
    "admin",
    "provider",
    "previous_step",
    "prev_next",
    "approve_request",
    "approver",
    "improve_onboarding",
    "kazakhstan_region",
    "novosibirsk",
    "region_nur_sultan",
    "branch_satpayev",
    "Europe/Saratov",
    "Europe/Sofia",
    "Asia/Ulan_Bator",
    "America/St_Thomas",
    "Europe/Moscow",
    "Europe/Kyiv",
    "stdev",
    "webdev_team",
    "gamedev",
    "egov_kz",
    "opengov",
    "abbrev",
    "markov_attribution",
    "kaspersky_injected_script",
    "supernova",
    "devops_preview",
    "govtech",
    "overview",
    "spisok_tovarov",
    "kolichestvo_zakazov",
    "spravochnik_klientov",
    "onMarkAsRead",
    "maxRetries",
    "willUnmount",
    "gracePeriod",
    "billingAddress",
    "artBoard",
    "victorySound",
    "jackpot_banner",
    "rose_chart",
    "may_contact",
    "o_kxqwvbzmtrplgfhd",
    "op_urtqisetbhxvkfev",
]

SURNAMES: Final[list[str]] = [
    # Russian
    "Petrov", "Ivanov", "Smirnov", "Kuznetsov", "Sokolov", "Popov", "Lebedev", "Kozlov",
    "Novikov", "Morozov", "Volkov", "Solovyov", "Vasilyev", "Zaytsev", "Pavlov", "Semyonov",
    "Golubev", "Vinogradov", "Bogdanov", "Vorobyov", "Fedorov", "Mikhaylov", "Belyaev",
    "Tarasov", "Belov", "Komarov", "Orlov", "Kiselev", "Makarov", "Andreev", "Kovalev",
    "Gusev", "Titov", "Kudryavtsev", "Baranov", "Kulikov", "Alekseev", "Stepanov", "Yakovlev",
    "Sergeev", "Zakharov", "Borisov", "Korolev", "Gerasimov", "Ponomarev", "Grigoryev",
    "Medvedev", "Ershov", "Sobolev", "Polyakov", "Tsvetkov", "Zhukov", "Frolov", "Zhuravlev",
    "Khrushchev", "Shcherbakov", "Ivanova", "Smirnova", "Kuznetsova", "Volkova", "Sorokin",
    "Nikitin", "Pushkin",
    # Kazakh, Uzbek, Kyrgyz
    "Nazarbayev", "Tokayev", "Suleimenov", "Akhmetov", "Zhaksylykov", "Baimukhamedov",
    "Iskakov", "Kassymov", "Omarov", "Nurpeisov", "Sarsenbayev", "Mukhamedzhanov",
    "Kenzhebekov", "Ospanov", "Zhumabayev", "Tulegenov", "Abdrakhmanov", "Nurlanov",
    "Dzhumabaev", "Aubakirov", "Zhakupov", "Akhmetova", "Nurlanova", "Nurlanuly", "Serikuly",
    "Aidoskyzy", "Karimov", "Mirziyoyev", "Rashidov", "Yusupov", "Rakhimov", "Abdullaev",
    "Qodirov", "Xolmatov", "Ismoilov",
    # Ukrainian, Belarusian, Polish-Russian
    "Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Kravchenko", "Kovalchuk",
    "Polishchuk", "Romanyuk", "Martyniuk", "Melnyk", "Boyko", "Lukashevich",
    "Dostoevsky", "Tchaikovsky", "Kandinsky", "Ostrovskiy", "Zhukovskaya", "Dzerzhinsky",
    "Kovalevskaya",
    # Georgian, Armenian, Russian plural-like
    "Dzhugashvili", "Saakashvili", "Chkheidze", "Shevardnadze", "Petrosyan", "Grigoryan",
    "Chernykh", "Sedykh",
    # patronymics
    "Ivanovich", "Petrovich", "Sergeevich", "Nikolaevna", "Ivanovna", "Aleksandrovna",
]  # fmt: skip

# A four-part version parses as an IPv4 address and is reported as one, on purpose: an
# address in a version field is indistinguishable from a leaked client address. The guard
# exempts ``ui_version`` from the IP detector instead (``policy.DETECTOR_EXEMPTIONS``).
VERSION_LIKE_IPS: Final[list[str]] = ["10.0.0.1", "1.2.3.4", "4.18.0.2"]
