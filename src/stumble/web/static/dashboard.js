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

  // Record a fix: the form's fields as the API's JSON, sent with the session's CSRF token.
  function wireFixForm() {
    var form = document.getElementById("fix-form");
    if (!form) return;
    var error = document.getElementById("fix-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.hidden = true;
      var value = function (name) {
        return form.elements.namedItem(name).value.trim();
      };
      var change = { shipped_on: value("shipped_on") };
      change[value("change_kind")] = value("change");
      var body = {
        title: value("title"),
        problem: value("problem"),
        hypothesis: value("hypothesis"),
        scenario: value("scenario"),
        owner: value("owner"),
        environment: value("environment"),
        change: change,
        expectations: [value("expect")],
        verify_on: value("verify_on"),
      };
      fetch("/api/v1/fixes", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        credentials: "same-origin",
        body: JSON.stringify(body),
      })
        .then(function (response) {
          return response.json().then(function (answer) {
            if (response.status === 201) {
              window.location.assign("/fixes#open");
              return;
            }
            error.textContent = answer.message || "The fix was not recorded (" + response.status + ").";
            error.hidden = false;
          });
        })
        .catch(function () {
          error.textContent = "The server did not answer. Try again in a moment.";
          error.hidden = false;
        });
    });
  }

  // Row actions (revoke a token, turn a write key off): ask, post with the CSRF token, reload.
  function wireRowActions() {
    document.querySelectorAll("button.row-action").forEach(function (button) {
      button.addEventListener("click", function () {
        var question = button.getAttribute("data-confirm");
        if (question && !window.confirm(question)) return;
        button.disabled = true;
        fetch(button.getAttribute("data-action"), {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
          credentials: "same-origin",
          body: button.getAttribute("data-body") || "{}",
        })
          .then(function (response) {
            return response.text().then(function () {
              if (!response.ok) {
                window.alert("The change was refused (" + response.status + ").");
              }
              window.location.reload();
            });
          })
          .catch(function () {
            button.disabled = false;
            window.alert("The server did not answer. Try again in a moment.");
          });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireRowActions();
    wireFixForm();
    wireSignOut();
    wireSignIn();
    wireRange();
    wireFilterForm();
  });
})();
