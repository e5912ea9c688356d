// The annotator's task loop: lease an item, show it beside the guidelines, gate audio,
// collect verdict + aspects + rationale, submit, show gold feedback after a wrong answer,
// move on. Served by Duet itself (no CDN); the HTML it inserts was sanitised on the server.
(function () {
  "use strict";

  const root = document.getElementById("task");
  if (!root) return;

  const $ = (id) => document.getElementById(id);
  const voteButtons = Array.from(root.querySelectorAll("button.vote"));
  const VERDICT_BY_KEY = {};
  voteButtons.forEach((button) => { VERDICT_BY_KEY[button.dataset.key] = button.dataset.verdict; });
  const VERDICT_TEXT = { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both are bad" };

  let state = null; // { payload, shownAt, events, tracks, busy, done }

  function csrfToken() {
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.hidden = !text;
    status.classList.toggle("error", !!isError);
  }

  function show(id, visible) {
    const element = $(id);
    if (element) element.hidden = !visible;
  }

  function showProgress(progress) {
    if (!progress) return;
    $("progress").textContent = "You have judged " + progress.completed + " item" + (progress.completed === 1 ? "" : "s") +
      (progress.skipped ? ", skipped " + progress.skipped : "") + "; " + progress.remaining + " left for you.";
  }

  function showWarning(text) {
    $("warning").textContent = text || "";
    show("warning", !!text);
  }

  function url(template, assignment) {
    return template.replace("/0/", "/" + assignment + "/");
  }

  async function request(method, target, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken();
      options.body = JSON.stringify(body);
    }
    const response = await fetch(target, options);
    const data = await response.json().catch(() => ({}));
    return { response, data };
  }

  function clearTask() {
    ["prompt", "sides", "votes", "answer", "gate", "feedback"].forEach((id) => show(id, false));
    $("body-a").replaceChildren();
    $("body-b").replaceChildren();
  }

  async function loadNext() {
    state = null;
    clearTask();
    setStatus("Loading an item…");
    let result;
    try {
      result = await request("GET", root.dataset.nextUrl);
    } catch (err) {
      setStatus("Could not reach Duet: " + err.message, true);
      return;
    }
    const { response, data } = result;
    if (response.status === 401) {
      window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname);
      return;
    }
    if (!response.ok) {
      // 404 "nothing left" is the happy end of the queue, not an error.
      setStatus(data.detail || "Could not load an item (" + response.status + ")", response.status !== 404);
      if (data.error === "quality_blocked") showWarning(data.detail);
      return;
    }
    render(data);
  }

  function renderSide(side, data) {
    const container = $("body-" + side);
    container.replaceChildren();
    container.className = "body " + data.kind;
    if (data.kind === "text") {
      container.innerHTML = data.html; // sanitised server-side (arena.outputs.rendering)
    } else if (data.kind === "image") {
      const img = document.createElement("img");
      img.src = data.url;
      img.alt = "Output " + side.toUpperCase();
      img.className = "output-image";
      container.appendChild(img);
    } else if (data.kind === "audio") {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "auto";
      audio.src = data.url;
      audio.id = "audio-" + side;
      container.appendChild(audio);
      trackAudio(audio, side, data.duration);
    }
  }

  function resetAnswer() {
    const form = $("answer");
    if (form) form.reset();
    updateRationaleCount();
  }

  function render(payload) {
    state = { payload, shownAt: performance.now(), events: [], tracks: {}, busy: false, done: false };
    $("prompt-body").innerHTML = payload.prompt.html; // sanitised server-side
    renderSide("a", payload.a);
    renderSide("b", payload.b);
    resetAnswer();
    showProgress(payload.progress);
    showWarning(payload.warning);
    ["prompt", "sides", "votes"].forEach((id) => show(id, true));
    show("answer", !!root.querySelector("#answer > *"));
    setStatus("");
    updateGate();
  }

  // --- audio gate (static/duet/audio_gate.js, shared with the arena) ---
  const gate = window.DuetAudioGate.forPage({
    root, current: () => state, canAnswer: (current) => !current.busy && !current.done,
    buttons: voteButtons, note: $("gate"), action: "answering",
  });
  const trackAudio = gate.track, gateOpen = gate.isOpen, updateGate = gate.update;

  // --- aspects and rationale ---
  function collectAspects() {
    const aspects = {};
    const missing = [];
    root.querySelectorAll(".aspect").forEach((element) => {
      const name = element.dataset.aspect;
      const label = element.querySelector(".aspect-label").firstChild.textContent.trim();
      const checked = (inputName) => {
        const input = element.querySelector('input[name="' + inputName + '"]:checked');
        return input ? input.value : null;
      };
      if (element.dataset.scale === "likert") {
        const a = checked("aspect-" + name + "-a");
        const b = checked("aspect-" + name + "-b");
        if (a && b) aspects[name] = { a: parseInt(a, 10), b: parseInt(b, 10) };
        else if (element.dataset.required === "1" || a || b) missing.push(label);
      } else {
        const value = checked("aspect-" + name);
        if (value) aspects[name] = value;
        else if (element.dataset.required === "1") missing.push(label);
      }
    });
    return { aspects, missing };
  }

  function rationaleText() {
    const box = $("rationale");
    return box ? box.value.trim() : "";
  }

  function updateRationaleCount() {
    const box = $("rationale");
    if (!box) return;
    const min = parseInt(box.dataset.minLength || "0", 10);
    const length = box.value.trim().length;
    $("rationale-count").textContent = min ? length + " / " + min + " characters" : length + " characters";
    $("rationale-count").classList.toggle("error", min > 0 && length < min);
  }

  // --- answering ---
  async function answer(verdict) {
    if (!state || state.busy || state.done || !gateOpen()) return;
    const { aspects, missing } = collectAspects();
    if (missing.length) {
      setStatus("Rate " + missing.join(", ") + " before answering.", true);
      return;
    }
    const rationale = rationaleText();
    const box = $("rationale");
    const min = box ? parseInt(box.dataset.minLength || "0", 10) : 0;
    if (box && rationale.length < min) {
      setStatus("Explain your answer in at least " + min + " characters (you wrote " + rationale.length + ").", true);
      box.focus();
      return;
    }
    state.busy = true;
    updateGate();
    const elapsed = performance.now() - state.shownAt;
    gate.recordVerdict(elapsed);
    const body = {
      token: state.payload.token,
      verdict,
      aspects,
      rationale,
      time_to_vote_ms: Math.round(elapsed),
      play_events: state.events,
    };
    let result;
    try {
      result = await request("POST", url(root.dataset.judgmentUrl, state.payload.assignment), body);
    } catch (err) {
      state.busy = false;
      updateGate();
      setStatus("Your answer was not sent: " + err.message, true);
      return;
    }
    const { response, data } = result;
    state.busy = false;
    if (!response.ok) {
      updateGate();
      setStatus(data.detail || "Your answer was not recorded (" + response.status + ")", true);
      if (data.error === "lease_expired" || data.error === "already_done") {
        setTimeout(loadNext, 1500);
      }
      return;
    }
    state.done = true;
    Object.values(state.tracks).forEach((track) => track.audio.pause());
    showProgress(data.progress);
    showWarning(data.warning);
    if (data.gold) {
      showGoldFeedback(verdict, data.gold);
      return;
    }
    setStatus("Saved.");
    loadNext();
  }

  function showGoldFeedback(verdict, gold) {
    updateGate();
    show("votes", false);
    $("feedback-text").textContent = "This was a check item. You answered that " + VERDICT_TEXT[verdict] +
      "; the expected answer is that " + VERDICT_TEXT[gold.expected] + ".";
    const explanation = $("feedback-explanation");
    explanation.textContent = gold.explanation || "";
    show("feedback", true);
    setStatus("");
    $("continue").focus();
  }

  async function skip() {
    if (!state || state.busy || state.done) return;
    state.busy = true;
    const { response, data } = await request("POST", url(root.dataset.skipUrl, state.payload.assignment), {});
    state.busy = false;
    if (!response.ok) {
      setStatus(data.detail || "Could not skip (" + response.status + ")", true);
      return;
    }
    showProgress(data.progress);
    loadNext();
  }

  voteButtons.forEach((button) => button.addEventListener("click", () => answer(button.dataset.verdict)));
  $("skip").addEventListener("click", skip);
  $("continue").addEventListener("click", loadNext);
  const box = $("rationale");
  if (box) box.addEventListener("input", updateRationaleCount);
  $("answer").addEventListener("submit", (event) => event.preventDefault());

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    // Typing goes to the text box; Esc leaves it so the keys answer again. Radio buttons
    // do not swallow keys, so 1-4 still answer after rating an aspect with the mouse.
    if (target.closest && target.closest("textarea, input[type=text], input[type=number], select, [contenteditable]")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (!$("feedback").hidden) {
      if (event.key === "Enter" && target === $("continue")) return; // the button's own click
      if (event.key === "n" || event.key === "Enter") {
        event.preventDefault();
        loadNext();
      }
      return;
    }
    const verdict = VERDICT_BY_KEY[event.key];
    if (verdict && voteButtons.length && !voteButtons[0].disabled) {
      event.preventDefault();
      answer(verdict);
    } else if (event.key === "s" && state && !state.done) {
      event.preventDefault();
      skip();
    }
  });

  loadNext();
})();
