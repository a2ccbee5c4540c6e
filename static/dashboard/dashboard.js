/* Synthgate dashboard: live job progress and the budget preview on the request form. No framework. */
(function () {
  "use strict";

  var TERMINAL = { succeeded: true, failed: true, cancelled: true };
  var TONES = { queued: "busy", running: "busy", succeeded: "good", failed: "bad", cancelled: "muted" };

  function setStatusBadges(status) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-job-status] .badge"), function (badge) {
      badge.textContent = status;
      badge.className = "badge badge-" + (TONES[status] || "muted");
    });
  }

  function setText(root, field, value) {
    var el = root.querySelector('[data-field="' + field + '"]');
    if (el) { el.textContent = value; }
  }

  function watchProgress(root) {
    var url = root.getAttribute("data-progress-url");
    var reload = root.hasAttribute("data-reload-when-finished");
    var bar = root.querySelector('[role="progressbar"]');
    var fill = root.querySelector(".progress-fill");
    var stopped = false;

    function render(state) {
      bar.setAttribute("aria-valuenow", String(state.progress));
      bar.setAttribute("aria-valuetext", state.progress + "% — " + state.phase);
      fill.style.width = state.progress + "%";
      setText(root, "progress", state.progress);
      setText(root, "phase", state.phase);
      setText(root, "status", state.status);
      var after = "";
      if (TERMINAL[state.status] && state.request_state) {
        after = state.request_state === "auditing" ? " · auditing the synthetic data…" : " · request " + state.request_state;
      }
      setText(root, "request_state", after);
      root.classList.toggle("failed", state.status === "failed" || state.status === "cancelled");
      root.classList.toggle("finished", !!state.finished && state.status === "succeeded");
      root.setAttribute("data-status", state.status);
      if (!root.closest(".job-row")) { setStatusBadges(state.status); }
      root.setAttribute("data-request-state", state.request_state || "");
      if (state.finished) { root.setAttribute("data-finished", "1"); }
    }

    function poll() {
      if (stopped) { return; }
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
        .then(function (state) {
          render(state);
          if (state.finished) {
            stopped = true;
            if (reload) { window.setTimeout(function () { window.location.reload(); }, 600); }
            return;
          }
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    poll();
  }

  function budgetPreview(form) {
    var info = document.getElementById("budget-info");
    var out = document.getElementById("budget-preview");
    if (!info || !out) { return; }
    var data = JSON.parse(info.textContent);
    var dataset = form.querySelector('[name="dataset"]');
    var purpose = form.querySelector('[name="purpose"]');
    var epsilon = form.querySelector('[name="epsilon"]');
    epsilon.setAttribute("aria-describedby", "budget-preview");

    function update() {
      var d = data.datasets[dataset.value];
      var p = data.purposes[purpose.value];
      if (!d) { out.textContent = ""; return; }
      var remaining = parseFloat(d.epsilon_remaining);
      var asked = parseFloat(epsilon.value);
      var text = "Remaining ε on " + dataset.value + ": " + d.epsilon_remaining + " of " + d.epsilon_cap;
      var over = false;
      if (!isNaN(asked) && asked > 0) {
        var after = remaining - asked;
        text += " → " + (Math.round(after * 1e6) / 1e6) + " after this request";
        if (after < 0) { text += " (exceeds the remaining budget; approval would be refused)"; over = true; }
        if (p && asked > parseFloat(p.max_epsilon)) {
          text += ". Purpose " + purpose.value + " allows at most ε " + p.max_epsilon + " per release"; over = true;
        }
      }
      out.textContent = text + ".";
      out.classList.toggle("over", over);
    }
    [dataset, purpose, epsilon].forEach(function (el) {
      el.addEventListener("input", update);
      el.addEventListener("change", update);
    });
    update();
  }

  /* A form sends once: its buttons are disabled while it is submitting. The pressed button's
     name and value travel in a hidden field, since a disabled button is not submitted. */
  function submitOnce(form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-submitting")) { event.preventDefault(); return; }
      form.setAttribute("data-submitting", "1");
      form.setAttribute("aria-busy", "true");
      var pressed = event.submitter;
      if (pressed && pressed.name) {
        var carry = document.createElement("input");
        carry.type = "hidden"; carry.name = pressed.name; carry.value = pressed.value;
        form.appendChild(carry);
      }
      window.setTimeout(function () {
        Array.prototype.forEach.call(form.querySelectorAll('button, input[type="submit"]'), function (button) {
          button.disabled = true;
        });
      }, 0);
    });
  }

  // Bar widths come as data-width (percent): the Content-Security-Policy allows no inline style.
  function applyWidths() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-width]"), function (el) {
      el.style.width = el.getAttribute("data-width") + "%";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll('form[method="post"], form[method="POST"]'), submitOnce);
    applyWidths();
    Array.prototype.forEach.call(document.querySelectorAll("[data-progress-url]"), watchProgress);
    var form = document.getElementById("request-form");
    if (form) { budgetPreview(form); }
  });
})();
