// Live progress on the training pages, with no library.
// The run page polls its JSON status (training/views.py `_status`) every 2 s and updates the
// status, progress bar, phase line and loss curve in place; when the run ends it reloads once
// to show the evaluation. The dashboard polls the runs API and updates its rows.
(function () {
  "use strict";
  const root = document.getElementById("training");
  if (!root || root.dataset.active !== "1") return;
  const INTERVAL_MS = 2000;

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return response.ok ? response.json() : null;
  }

  function setText(id, text) {
    const node = document.getElementById(id);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function show(id, visible) {
    const node = document.getElementById(id);
    if (node) node.hidden = !visible;
  }

  function drawCurve(curve) {
    show("loss-section", Boolean(curve));
    if (!curve) return;
    const svg = document.getElementById("loss-curve");
    svg.querySelector("polyline").setAttribute("points", curve.points);
    svg.querySelector(".curve-high").textContent = curve.high;
    svg.querySelector(".curve-low").textContent = curve.low;
    svg.querySelector(".curve-first").textContent = "step " + curve.first;
    svg.querySelector(".curve-last").textContent = "step " + curve.last;
  }

  function render(state) {
    setText("run-status", state.status);
    show("stopping", state.stopping);
    setText("n-pairs", state.n_pairs === null ? "?" : String(state.n_pairs));
    setText("progress-text", state.progress_text);
    const bar = document.getElementById("progress");
    if (bar) bar.value = state.percent;
    setText("worker-warning", state.worker_warning);
    show("worker-warning", Boolean(state.worker_warning));
    drawCurve(state.loss_curve);
  }

  async function pollRun() {
    try {
      const state = await getJSON(root.dataset.status);
      if (state) {
        render(state);
        if (state.finished) { window.location.reload(); return; }
      }
    } catch (err) { /* the server is restarting: try again */ }
    window.setTimeout(pollRun, INTERVAL_MS);
  }

  // The dashboard: rows update in place; a run that ended reloads the page for its results,
  // unless the researcher has started filling in the form.
  let formTouched = false;
  const form = document.getElementById("start-run");
  if (form) form.addEventListener("input", () => { formTouched = true; });

  async function pollRuns() {
    try {
      const body = await getJSON(root.dataset.api);
      if (body) {
        let ended = false;
        for (const run of body.results || []) {
          const row = document.querySelector(`tr[data-run="${run.id}"]`);
          if (!row) continue;
          const status = row.querySelector(".run-status");
          if (status.textContent !== run.status) {
            ended = ended || ["succeeded", "failed", "cancelled"].includes(run.status);
            status.textContent = run.status;
          }
          row.querySelector("progress").value = run.percent;
          row.querySelector(".steps").textContent = run.progress_text;
        }
        if (ended && !formTouched) { window.location.reload(); return; }
      }
    } catch (err) { /* try again */ }
    window.setTimeout(pollRuns, INTERVAL_MS);
  }

  if (root.dataset.status) pollRun(); else pollRuns();
})();
