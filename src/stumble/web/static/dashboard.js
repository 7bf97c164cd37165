// stumble dashboard: the little behaviour the server-rendered pages need.
// No inline script anywhere (the CSP forbids it); charts are drawn by charts.js.
"use strict";

(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Sign out: the session cookie is HttpOnly, so the server ends it (with the CSRF token).
  function wireSignOut() {
    var button = document.getElementById("sign-out");
    if (!button) return;
    button.addEventListener("click", function () {
      fetch("/api/v1/session", {
        method: "DELETE",
        headers: { "X-CSRF-Token": csrfToken() },
        credentials: "same-origin",
      }).finally(function () {
        window.location.assign("/signin");
      });
    });
  }

  // Sign in with a pasted API token; JSON keeps other sites from posting this form.
  function wireSignIn() {
    var form = document.getElementById("signin-form");
    if (!form) return;
    var error = document.getElementById("signin-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.hidden = true;
      var token = form.elements.namedItem("token").value.trim();
      fetch("/api/v1/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ token: token }),
      })
        .then(function (response) {
          if (response.ok) {
            // Read the answer before leaving, so the request completes rather than aborts.
            return response.json().then(function () {
              window.location.assign(form.getAttribute("data-next") || "/");
            });
          }
          error.textContent =
            response.status === 401
              ? "That token is not valid (unknown, expired or revoked)."
              : "Signing in failed (" + response.status + "). Try again in a moment.";
          error.hidden = false;
        })
        .catch(function () {
          error.textContent = "The server did not answer. Try again in a moment.";
          error.hidden = false;
        });
    });
  }

  // The custom dates matter only for a custom range: hidden and left out of the URL otherwise.
  function wireRange() {
    var range = document.getElementById("f-range");
    if (!range) return;
    var fields = document.querySelectorAll("[data-custom-range]");
    function sync() {
      var custom = range.value === "custom";
      fields.forEach(function (field) {
        field.hidden = !custom;
        field.querySelectorAll("input").forEach(function (input) {
          input.disabled = !custom;
        });
      });
    }
    range.addEventListener("change", sync);
    sync();
  }

  // Empty choices ("all roles") are left out of the URL, so links stay short.
  function wireFilterForm() {
    var form = document.querySelector("form.filters");
    if (!form) return;
    form.addEventListener("submit", function () {
      form.querySelectorAll("select, input").forEach(function (control) {
        if (!control.value) control.disabled = true;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireSignOut();
    wireSignIn();
    wireRange();
    wireFilterForm();
  });
})();
