// Class sessions: the instructor's page reports where it is; a follower's page moves with
// it, until the student chooses to explore on their own.
(function () {
  "use strict";
  const body = document.body;
  const drive = body.dataset.classDrive;
  const follow = body.dataset.classFollow;
  if (!drive && !follow) return;
  const code = drive || follow;
  let version = Number(body.dataset.classVersion || 0);
  let socket = null;
  let retries = 0;
  let lastSent = null;
  let detached = false;
  let ended = false;

  const byId = (id) => document.getElementById(id);
  const here = () => location.pathname + location.search;
  function say(text) { const status = byId("class-status"); if (status) status.textContent = text; }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const path = "/ws/class/" + encodeURIComponent(code) + "/";
    return scheme + location.host + path + (follow ? "?v=" + version : "");
  }

  function connect() {
    socket = new WebSocket(socketUrl());
    socket.addEventListener("open", function () {
      retries = 0;
      lastSent = null;
      if (follow && !detached) say("Following class " + code + ": this page moves with the instructor's.");
      if (drive) { say(""); report(); } // the bar already says the class follows
    });
    socket.addEventListener("message", function (event) { receive(JSON.parse(event.data)); });
    socket.addEventListener("close", function (event) {
      if (ended) return;
      if (event.code === 4404) { say("This class session does not exist."); return; }
      say("Connection to the class lost; reconnecting…");
      retries = Math.min(retries + 1, 5);
      setTimeout(connect, 250 + Math.random() * 250 * 2 ** retries);
    });
  }

  // The instructor: report the page whenever its URL changes (a step, a live run, another
  // page), at most a few times a second.
  function report() {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const url = here();
    if (url === lastSent) return;
    lastSent = url;
    socket.send(JSON.stringify({ action: "drive", url: url }));
  }

  function receive(frame) {
    if (frame.error) { say(frame.error); return; }
    if (frame.followers !== undefined) {
      const count = byId("class-followers");
      if (count) count.textContent = frame.followers === 1 ? "1 student connected" : frame.followers + " students connected";
      return;
    }
    if (frame.action === "progress") { // the instructor's lab run, as it goes
      const live = byId("lab-live");
      // Never over a run of the student's own (a panel that is neither empty nor mirrored).
      const free = live && (live.dataset.mirrored === "true" || !live.children.length);
      if (follow && !detached && free) swap(frame.html);
      return;
    }
    if (drive || frame.version <= version) return; // our own move, or already shown
    version = frame.version;
    if (frame.action === "end") {
      ended = true;
      say("The class has ended; this page stays as it is.");
      socket.close();
      return;
    }
    if (detached) { say("Exploring on your own. The instructor has moved on."); return; }
    if (frame.action === "load") { location.replace("/class/" + encodeURIComponent(code) + "/"); return; }
    swap(frame.html);
  }

  // The same partial a step link's answer holds: #player replaced, the announcer filled.
  function swap(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    for (const element of Array.from(template.content.children)) {
      const existing = element.id && byId(element.id);
      if (!existing) continue;
      if (element.getAttribute("hx-swap-oob") === "innerHTML") {
        existing.innerHTML = element.innerHTML;
      } else {
        existing.replaceWith(element);
        htmx.process(element);
      }
    }
  }

  function detach() {
    if (detached || !follow) return;
    detached = true;
    const link = byId("class-detach");
    if (link) {
      link.id = "class-rejoin";
      link.href = "/class/" + encodeURIComponent(code) + "/";
      link.textContent = "Follow again";
    }
    say("Exploring on your own.");
  }

  if (follow) {
    document.addEventListener("click", function (event) {
      const target = event.target.closest("a, button, input");
      if (!target) return;
      if (target.id === "class-detach") { event.preventDefault(); detach(); return; }
      // Stepping or playing on a followed page means exploring: stop following.
      if (target.closest("#player") || target.id === "play") detach();
    }, true);
    document.addEventListener("keydown", function (event) {
      if (["ArrowLeft", "ArrowRight", "Home", "End", " "].includes(event.key)) detach();
    }, true);
  }
  if (drive) setInterval(report, 150);
  connect();
})();
