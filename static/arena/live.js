// Live battles: send a prompt, watch both anonymous answers stream in, follow up, vote.
(function () {
  "use strict";

  const root = document.getElementById("live");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const voteButtons = Array.from(root.querySelectorAll("button.vote"));
  const VERDICT_KEYS = { 1: "a", 2: "b", 3: "tie", 4: "both_bad" };
  const VERDICT_TEXT = { a: "You preferred A", b: "You preferred B", tie: "You called it a tie", both_bad: "You found both bad" };

  let battle = null; // the latest state from the server
  let events = null;
  let voted = false;
  const updates = { a: 0, b: 0 }; // how many times each side's text grew (streaming is visible)
  const shownText = { a: "", b: "" };

  function csrf() {
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text || "";
    status.hidden = !text;
    status.classList.toggle("error", !!isError);
  }

  async function api(url, body) {
    const response = await fetch(url, {
      method: body ? "POST" : "GET",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf() },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) {
      window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    }
    if (!response.ok) {
      const detail = data.detail || Object.values(data).flat().join(" ") || "request failed";
      throw new Error(detail + " (" + response.status + ")");
    }
    return data;
  }

  function battleUrl(suffix) {
    return root.dataset.startUrl + battle.battle + "/" + (suffix || "");
  }

  // A queued answer says why it waits: answers ahead of it, or a busy worker.
  function waitingText(state) {
    const waited = state.waiting_s >= 2 ? " (" + state.waiting_s + " s)" : "";
    if (state.queue_position > 0) return "Waiting in the queue: " + state.queue_position + " ahead" + waited + "…";
    if (state.status === "queued" && waited) return "Waiting for a free worker" + waited + "…";
    return battle.modality === "text" ? "Answering…" : "Rendering…";
  }

  function renderAnswer(side, turn) {
    const state = turn[side] || { status: "queued", text: "" };
    const answer = document.createElement("div");
    answer.className = "answer";
    if (state.status === "done") {
      if (state.kind === "image") {
        const img = document.createElement("img");
        img.src = state.url;
        img.alt = "Answer " + side.toUpperCase();
        answer.appendChild(img);
      } else if (state.kind === "audio") {
        const audio = document.createElement("audio");
        audio.controls = true;
        audio.src = state.url;
        answer.appendChild(audio);
      } else {
        answer.innerHTML = state.html; // sanitised on the server
      }
    } else if (state.status === "failed") {
      answer.className = "answer waiting";
      answer.textContent = "Could not answer.";
    } else if (state.text) {
      answer.className = "answer streaming";
      answer.textContent = state.text;
    } else {
      answer.className = "answer waiting";
      answer.textContent = waitingText(state);
    }
    return answer;
  }

  function render(state) {
    battle = state;
    ["a", "b"].forEach((side) => {
      const conv = $("conv-" + side);
      conv.replaceChildren();
      state.turns.forEach((turn) => {
        const user = document.createElement("div");
        user.className = "user";
        user.textContent = turn.message;
        conv.appendChild(user);
        conv.appendChild(renderAnswer(side, turn));
      });
      const last = state.turns[state.turns.length - 1];
      const text = last && last[side] ? (last[side].text || "") : "";
      if (text.length > shownText[side].length) updates[side] += 1;
      shownText[side] = text;
      conv.dataset.updates = String(updates[side]);
    });
    $("sides").hidden = false;
    $("votes").hidden = voted || state.status === "void";
    const canVote = state.can_vote && !voted && root.dataset.canVote === "1";
    voteButtons.forEach((button) => { button.disabled = !canVote; });
    $("follow-up").hidden = !(state.can_follow_up && !voted);
    if (state.status === "void") {
      setStatus(state.void_reason, true);
      $("after").hidden = false;
      $("result").textContent = "";
    } else if (state.status === "generating") {
      setStatus("The systems are answering…");
    } else if (!voted) {
      setStatus("");
    }
  }

  function listen() {
    if (events) events.close();
    events = new EventSource(battleUrl("events/"));
    events.addEventListener("state", (event) => render(JSON.parse(event.data)));
    events.addEventListener("end", () => { events.close(); events = null; });
    events.onerror = () => {
      // Fall back to polling if the stream is cut (a proxy, a restart).
      if (events) { events.close(); events = null; }
      window.setTimeout(poll, 1000);
    };
  }

  async function poll() {
    if (!battle || voted) return;
    try {
      const state = await api(battleUrl());
      render(state);
      if (state.status === "generating") window.setTimeout(poll, 500);
    } catch (err) {
      setStatus(err.message, true);
    }
  }

  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("message").value;
    $("send").disabled = true;
    try {
      voted = false;
      updates.a = updates.b = 0;
      shownText.a = shownText.b = "";
      const state = await api(root.dataset.startUrl, { modality: root.dataset.modality, message });
      $("ask").hidden = true;
      render(state);
      listen();
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      $("send").disabled = false;
    }
  });

  $("follow-up").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("follow-message").value;
    $("send-follow-up").disabled = true;
    try {
      const state = await api(battleUrl("messages/"), { message });
      $("follow-message").value = "";
      updates.a = updates.b = 0;
      shownText.a = shownText.b = "";
      render(state);
      listen();
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      $("send-follow-up").disabled = false;
    }
  });

  async function vote(verdict) {
    if (!battle || voted || voteButtons[0].disabled) return;
    voteButtons.forEach((button) => { button.disabled = true; });
    try {
      const body = await api(battleUrl("vote/"), { verdict });
      voted = true;
      if (events) { events.close(); events = null; }
      ["a", "b"].forEach((side) => {
        const identity = $("identity-" + side);
        const info = body.reveal[side];
        identity.textContent = info.system + (info.demo ? " · demo renderer" : "");
        identity.hidden = false;
      });
      $("votes").hidden = true;
      $("follow-up").hidden = true;
      $("result").textContent = VERDICT_TEXT[verdict] + ": A was " + body.reveal.a.system + ", B was " + body.reveal.b.system + "." +
        (body.anonymous === false ? " (An answer named its system, so this vote stays off the public leaderboard.)" : "");
      $("after").hidden = false;
      setStatus("");
      $("new-round").focus();
    } catch (err) {
      setStatus(err.message, true);
      render(battle);
    }
  }

  function newRound() {
    if (events) { events.close(); events = null; }
    battle = null;
    voted = false;
    $("sides").hidden = true;
    $("votes").hidden = true;
    $("follow-up").hidden = true;
    $("after").hidden = true;
    ["a", "b"].forEach((side) => { $("identity-" + side).hidden = true; $("conv-" + side).replaceChildren(); });
    $("ask").hidden = false;
    $("message").value = "";
    setStatus("");
    $("message").focus();
  }

  voteButtons.forEach((button) => button.addEventListener("click", () => vote(button.dataset.verdict)));
  $("new-round").addEventListener("click", newRound);
  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (!$("after").hidden) {
      if (event.key === "n" || (event.key === "Enter" && event.target !== $("new-round"))) {
        event.preventDefault();
        newRound();
      }
      return;
    }
    const verdict = VERDICT_KEYS[event.key];
    if (verdict) {
      event.preventDefault();
      vote(verdict);
    }
  });
})();
