// living-review: keyboard shortcuts and small page helpers (no framework).
// Elements with data-key="<key>" are clicked (buttons) or focused (fields) when the key is
// pressed outside a text field; "?" toggles the help box; Escape leaves a text field.
(function () {
  "use strict";
  function isField(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (isField(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.key === "?") {
      var help = document.getElementById("help");
      if (help) help.hidden = !help.hidden;
      return;
    }
    var target = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]');
    if (!target || target.disabled) return;
    event.preventDefault();
    if (isField(target)) {
      target.focus();
    } else {
      document.querySelectorAll("[data-key]").forEach(function (el) {
        if (el.tagName === "BUTTON") el.disabled = el !== target ? true : el.disabled;
      });
      target.disabled = false;
      target.click();
    }
  });
  // Help box: a close button inside, a show/hide link outside; Escape closes it too.
  document.addEventListener("click", function (event) {
    var el = event.target;
    if (!el || !el.getAttribute) return;
    var close = el.getAttribute("data-close"), toggle = el.getAttribute("data-toggle");
    var box = document.getElementById(close || toggle || "");
    if (!box) return;
    box.hidden = close ? true : !box.hidden;
  });
  document.addEventListener("keydown", function (event) {
    var help = document.getElementById("help");
    if (event.key === "Escape" && help && !help.hidden) help.hidden = true;
  });
  // Queue page: the progress panel is filled after the record is shown (it counts the queue).
  var panel = document.querySelector("[data-progress-url]");
  if (panel) {
    fetch(panel.getAttribute("data-progress-url"), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        panel.querySelectorAll("[data-progress]").forEach(function (el) {
          var key = el.getAttribute("data-progress"), value = data[key];
          if (key === "estimated_recall" && value !== null) value = (100 * value).toFixed(1) + "%";
          else if ((key === "expected_relevant_left" || key === "relevant_left_low" ||
                    key === "relevant_left_high") && value !== null) value = value.toFixed(1);
          el.textContent = value === null ? "–" : String(value);
        });
        var recall = document.getElementById("recall");
        if (recall && data.estimated_recall !== null) recall.hidden = false;
        panel.setAttribute("data-loaded", "1");
      });
  }
  // Extraction form: focusing a field highlights its evidence in the abstract.
  document.addEventListener("focusin", function (event) {
    var name = event.target && event.target.getAttribute && event.target.getAttribute("name");
    document.querySelectorAll("mark.evidence").forEach(function (m) {
      m.classList.toggle("active", m.getAttribute("data-field") === name);
    });
  });
})();
