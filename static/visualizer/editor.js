// The playground's code editor: the "Edit this view" textarea becomes CodeMirror 5
// (vendored in static/vendor/), with Python highlighting and line numbers; the textarea
// stays the form's field (CodeMirror writes it back on submit). The lines a problem was
// found at are marked, and each problem's line link moves the cursor there. Without
// JavaScript the page works as it is: a textarea and a form.
(function () {
  "use strict";

  function start() {
    // With JavaScript the page that opens after Run follows the run as it goes (player.js):
    // the server answers as soon as the run's first step is in.
    const form = document.getElementById("edit-form");
    if (form) {
      const stream = document.createElement("input");
      Object.assign(stream, { type: "hidden", name: "stream", value: "1" });
      form.appendChild(stream);
    }
    const area = document.getElementById("id_edit-source");
    if (!area) return;
    if (typeof window.CodeMirror !== "function") {
      shareWithClass(form, () => area.value, (changed) => area.addEventListener("input", changed));
      return;
    }
    const wrap = area.closest(".editor-wrap");
    const editor = window.CodeMirror.fromTextArea(area, {
      mode: "python",
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      // A screen reader gets the text itself, not a hidden textarea's copy.
      inputStyle: "contenteditable",
      screenReaderLabel: "The view's code",
      viewportMargin: Infinity,
      extraKeys: {
        Tab: (cm) => cm.execCommand(cm.somethingSelected() ? "indentMore" : "insertSoftTab"),
        "Shift-Tab": "indentLess",
        // Tab indents inside the editor: Escape leaves it, for the next field.
        Esc: () => {
          const next = document.getElementById("id_edit-requests");
          if (next) next.focus();
        },
      },
    });
    const lines = (wrap && wrap.dataset.errorLines ? wrap.dataset.errorLines.split(",") : [])
      .map(Number)
      .filter((line) => line >= 1 && line <= editor.lineCount());
    for (const line of lines) {
      editor.addLineClass(line - 1, "background", "cm-problem-line");
    }
    for (const link of document.querySelectorAll("[data-goto-line]")) {
      link.addEventListener("click", (event) => {
        const line = Number(link.dataset.gotoLine);
        if (!(line >= 1 && line <= editor.lineCount())) return;
        event.preventDefault();
        editor.focus();
        editor.setCursor({ line: line - 1, ch: 0 });
        editor.scrollIntoView({ line: line - 1, ch: 0 }, 80);
      });
    }
    startSuggestions(editor);
    shareWithClass(form, () => editor.getValue(), (changed) => editor.on("change", changed));
    document.documentElement.classList.add("has-code-editor");
  }

  // In a class, the instructor's code goes to the followers' read-only editor as it is
  // typed: once typing pauses, and at once on Run. classroom.js sends it over the class
  // socket (on a page no class follows, nobody listens); nothing here runs it.
  const TYPING_PAUSE = 600; // ms
  function shareWithClass(form, read, onChange) {
    if (!form) return;
    let timer = null;
    let shared = null;
    function share() {
      clearTimeout(timer);
      const text = read();
      if (text === shared) return;
      shared = text;
      const detail = { scenario: form.dataset.scenario, text: text };
      document.dispatchEvent(new CustomEvent("playground:code", { detail: detail }));
    }
    onChange(() => { clearTimeout(timer); timer = setTimeout(share, TYPING_PAUSE); });
    form.addEventListener("submit", share);
  }

  // A suggested edit's link loads its code into the editor, with no reload (without
  // JavaScript, the link opens the page with that code in the textarea).
  function startSuggestions(editor) {
    const data = document.getElementById("edit-suggested-code");
    const status = document.getElementById("suggestion-loaded");
    if (!data) return;
    const codes = JSON.parse(data.textContent);
    const links = document.querySelectorAll("[data-suggestion]");
    for (const link of links) {
      link.addEventListener("click", (event) => {
        const code = codes[link.dataset.suggestion];
        if (typeof code !== "string") return;
        event.preventDefault();
        editor.setValue(code);
        for (const other of links) other.removeAttribute("aria-current");
        link.setAttribute("aria-current", "true");
        if (status) status.textContent = link.dataset.loaded;
        editor.focus();
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
