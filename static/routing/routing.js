// A project's routing page while a judging or routing job runs: poll the job's JSON status,
// move the bar, and when it ends show its result, update its row in the jobs table and the
// project's figures (routes, budget, the judge's agreement) from the project's JSON summary,
// all in place, without reloading the page. No inline script (the CSP forbids it), no CDN.
(function () {
  "use strict";
  const root = document.getElementById("routing-job");
  if (!root || !root.dataset.jobUrl || root.dataset.active !== "1") return;
  const ENDED = { succeeded: true, failed: true };
  const HIDDEN_COUNTS = { judge: true, seconds: true };
  const INTERVAL_MS = 1500;
  const bar = root.querySelector("#job-progress");
  const status = root.querySelector(".job-status");
  const done = root.querySelector(".job-done");
  const total = root.querySelector(".job-total");
  const error = root.querySelector(".job-error");
  const result = root.querySelector(".job-result");

  function percent(value, digits) {
    return value === null || value === undefined ? "—" : (100 * value).toFixed(digits === undefined ? 1 : digits) + "%";
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  // "<value> <small>note</small>", as the template writes the figures.
  function setFigure(id, value, note) {
    const element = document.getElementById(id);
    if (!element) return;
    element.textContent = value + " ";
    if (note) {
      const small = document.createElement("small");
      small.textContent = note;
      element.appendChild(small);
    }
  }

  function countsText(counts) {
    return Object.keys(counts || {}).filter(function (key) {
      return counts[key] && !HIDDEN_COUNTS[key];
    }).map(function (key) { return key + " " + counts[key]; }).join(" ");
  }

  function showJob(job) {
    if (bar) bar.value = job.percent;
    if (status) status.textContent = job.status;
    if (done) done.textContent = job.done;
    if (total) total.textContent = job.total;
    if (error && job.error) { error.textContent = job.error; error.hidden = false; }
    const row = document.querySelector('#jobs tr[data-job="' + job.id + '"]');
    if (row) {
      row.querySelector(".job-status").textContent = job.status;
      row.querySelector(".job-done").textContent = job.done + "/" + job.total;
      row.querySelector(".job-counts").textContent = countsText(job.counts);
      if (job.judge) row.querySelector(".job-judge").textContent = job.judge;
      if (job.finished_at) row.querySelector(".job-finished").textContent = new Date(job.finished_at).toLocaleString();
      const cancel = row.querySelector(".job-cancel");  // an ended job has nothing to cancel
      if (cancel && job.finished_at) cancel.closest("form").hidden = true;
    }
  }

  function showSummary(summary) {
    const routes = summary.routes || {};
    setText("routes-human", routes.human);
    setText("routes-judge", routes.judge);
    setText("routes-pending", routes.pending);
    const button = document.getElementById("route-button");
    if (button) button.textContent = "Route pending items (" + routes.pending + ")";
    const budget = summary.budget || {};
    setFigure("budget-used", budget.used, budget.target !== null && budget.target !== undefined
      ? "of " + budget.target + " (" + percent(budget.share_used, 0) + ")" : "");
    setText("judge-name", summary.judge || "none has run yet");
    const agreement = summary.agreement || {};
    setFigure("agreement-all", percent(agreement.agreement), "n=" + agreement.n);
    setFigure("agreement-no-ties", percent(agreement.agreement_no_ties), "n=" + agreement.n_no_ties);
    setText("agreement-chance", percent(agreement.chance));
    setText("tie-shares", percent(agreement.judge_tie_share, 0) + " / " + percent(agreement.human_tie_share, 0));
    setFigure("order-consistency", percent(agreement.order_consistency), "n=" + agreement.order_known);
    setFigure("unparsable", agreement.unparsable, "of " + agreement.judged);
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return response.ok ? response.json() : null;
  }

  async function finished(job) {
    root.dataset.active = "0";
    if (result) {
      result.textContent = job.status === "succeeded"
        ? "Done: " + (countsText(job.counts) || "nothing to do") + ". The figures above are up to date; the decisions table fills in on the next visit."
        : "The job failed after " + job.done + " of " + job.total + "; the error is shown above. Running it again resumes where it stopped.";
      result.className = job.status === "succeeded" ? "status job-result" : "error job-result";
      result.hidden = false;
    }
    if (root.dataset.summaryUrl) {
      try {
        const summary = await getJson(root.dataset.summaryUrl);
        if (summary) showSummary(summary);
      } catch (err) { /* the figures stay as they were; the next visit shows them */ }
    }
  }

  async function poll() {
    try {
      const job = await getJson(root.dataset.jobUrl);
      if (job) {
        showJob(job);
        if (ENDED[job.status]) { await finished(job); return; }
      }
    } catch (err) { /* the server is busy or restarting: try again */ }
    window.setTimeout(poll, INTERVAL_MS);
  }
  poll();
})();
