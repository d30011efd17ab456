// The one-file replay's player: every step is a <template> in this file, rendered by the
// server as the page renders it; stepping swaps the shown one in. No network is used.
(function () {
  "use strict";
  const templates = Array.from(document.querySelectorAll("template[data-step]"));
  const last = templates.length;
  if (!last) return;
  let current = 1;

  function stepOf(href) {
    const hash = /#step-(\d+)$/.exec(href || "");
    if (hash) return Number(hash[1]);
    const query = /[?&]step=(\d+)/.exec(href || "");
    return query ? Number(query[1]) : null;
  }

  function show(step, focusControl) {
    step = Math.max(1, Math.min(last, step));
    current = step;
    const player = document.getElementById("player");
    const next = templates[step - 1].content.firstElementChild.cloneNode(true);
    player.replaceWith(next);
    const narration = document.getElementById("narration-text");
    document.getElementById("announcer").textContent = narration ? narration.textContent : "";
    if (location.hash !== "#step-" + step) history.replaceState(null, "", "#step-" + step);
    if (focusControl) {
      const control = next.querySelector('[data-step-control="' + focusControl + '"]');
      if (control) control.focus();
    }
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("a");
    if (!link) return;
    const step = stepOf(link.getAttribute("href"));
    if (step === null) {
      // A link to the server the file came from: there is none here.
      if (link.closest("#player")) event.preventDefault();
      return;
    }
    event.preventDefault();
    show(step, link.dataset.stepControl);
  });
  document.addEventListener("input", function (event) {
    if (event.target.id === "step-slider") show(Number(event.target.value));
  });
  document.addEventListener("submit", function (event) { event.preventDefault(); });
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, select, textarea")) return;
    const moves = { ArrowLeft: current - 1, ArrowRight: current + 1, Home: 1, End: last };
    if (!(event.key in moves)) return;
    event.preventDefault();
    show(moves[event.key]);
  });
  const start = stepOf(location.hash);
  if (start) show(start);
})();
