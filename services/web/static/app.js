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
  // Extraction form: focusing a field highlights its evidence in the abstract.
  document.addEventListener("focusin", function (event) {
    var name = event.target && event.target.getAttribute && event.target.getAttribute("name");
    document.querySelectorAll("mark.evidence").forEach(function (m) {
      m.classList.toggle("active", m.getAttribute("data-field") === name);
    });
  });
})();
