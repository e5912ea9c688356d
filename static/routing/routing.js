// The judging job's progress bar on a project's routing page: poll the job's API while it
// is queued or running, move the bar, and reload the page once it ends so the figures and
// the decisions include what it did. No inline script (the CSP forbids it), no CDN.
(function () {
  "use strict";
  const root = document.getElementById("routing-job");
  if (!root || !root.dataset.jobUrl || root.dataset.active !== "1") return;
  const bar = root.querySelector("#job-progress");
  const status = root.querySelector(".job-status");
  const done = root.querySelector(".job-done");
  const total = root.querySelector(".job-total");
  const error = root.querySelector(".job-error");
  async function poll() {
    try {
      const response = await fetch(root.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const job = await response.json();
        if (bar) bar.value = job.percent;
        if (status) status.textContent = job.status;
        if (done) done.textContent = job.done;
        if (total) total.textContent = job.total;
        if (error && job.error) { error.textContent = job.error; error.hidden = false; }
        if (job.status === "succeeded" || job.status === "failed") { window.location.reload(); return; }
      }
    } catch (err) { /* the server is busy or restarting: try again */ }
    window.setTimeout(poll, 1500);
  }
  poll();
})();
