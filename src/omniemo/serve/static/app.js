// The page: upload a clip, poll its job, show the answer, the reasoning with its cues, the report. No build step.
"use strict";
const $ = (id) => document.getElementById(id);
const tokenRequired = document.body.dataset.tokenRequired === "true";
let chosenFile = null;

function headers() {
  const token = tokenRequired ? ($("token").value || sessionStorage.getItem("omniemo-token") || "") : "";
  if (tokenRequired && $("token").value) sessionStorage.setItem("omniemo-token", $("token").value);
  return token ? { Authorization: "Bearer " + token } : {};
}

function choose(file) {
  chosenFile = file;
  $("chosen").textContent = file ? `${file.name} (${(file.size / 1e6).toFixed(1)} MB)` : "No file chosen.";
}

$("file").addEventListener("change", (e) => choose(e.target.files[0] || null));
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]); });

function status(text, isError) {
  $("status").hidden = false;
  $("status-text").textContent = text;
  $("status-text").className = isError ? "error" : "";
}

async function detail(response) {
  try { return (await response.json()).detail || response.statusText; } catch { return response.statusText; }
}

$("upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!chosenFile) { status("Choose a clip first.", true); return; }
  const form = new FormData();
  form.append("file", chosenFile, chosenFile.name);
  form.append("labels", $("labels").value);
  form.append("modalities", $("modalities").value);
  form.append("report", $("report").checked ? "true" : "false");
  form.append("timeline", $("timeline").checked ? "true" : "false");
  $("analyse").disabled = true;
  $("result").hidden = true;
  status("Uploading ...");
  try {
    const response = await fetch("/v1/analyses", { method: "POST", body: form, headers: headers() });
    if (!response.ok) { status(`Not accepted: ${await detail(response)}`, true); return; }
    const job = await response.json();
    await follow(job.id);
  } catch (err) {
    status(`Upload failed: ${err}`, true);
  } finally {
    $("analyse").disabled = false;
    refreshRecent();
  }
});

async function follow(id) {
  for (;;) {
    const response = await fetch(`/v1/analyses/${id}`, { headers: headers() });
    if (!response.ok) { status(`Lost the analysis: ${await detail(response)}`, true); return; }
    const job = await response.json();
    $("progress").value = job.progress;
    if (job.status === "done") { status(`Done: ${job.filename}`); show(job); return; }
    if (job.status === "failed") { status(`Failed: ${job.error}`, true); return; }
    status(job.status === "queued" ? "Waiting for a worker ..." : `Analysing ${job.filename} ... ${Math.round(100 * job.progress)} %`);
    await new Promise((r) => setTimeout(r, 700));
  }
}

function cueText(cue) {
  let value = cue.value;
  if (typeof value === "number") value = Number(value.toPrecision(3));
  if (Array.isArray(value)) value = value.join(", ");
  const spans = (cue.spans || []).slice(0, 4).map(([a, b]) => `${a.toFixed(2)}-${b.toFixed(2)} s`).join(", ");
  return `${cue.id} = ${value} ${cue.unit}${spans ? " at " + spans : ""}${cue.confidence != null ? "; confidence " + cue.confidence : ""} (${cue.model})`;
}

async function show(job) {
  const r = job.result;
  $("answer").textContent = r.label;
  const bars = $("bars");
  bars.replaceChildren();
  Object.entries(r.probabilities).sort((a, b) => b[1] - a[1]).forEach(([label, p]) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span></span><i style="width:${(300 * p).toFixed(0)}px"></i><em>${p.toFixed(2)}</em>`;
    row.querySelector("span").textContent = label;
    bars.append(row);
  });
  const cues = Object.fromEntries(((r.evidence || {}).cues || []).map((c) => [c.id, c]));
  const list = $("reasoning");
  list.replaceChildren();
  r.reasoning.forEach((sentence) => {
    const li = document.createElement("li");
    li.append(document.createTextNode(sentence.text + " "));
    (sentence.cues || []).forEach((id) => {
      const chip = document.createElement("span");
      chip.className = "cue";
      chip.tabIndex = 0;
      chip.textContent = id;
      const text = cues[id] ? cueText(cues[id]) : id;
      chip.title = text;
      const open = () => { $("cue-detail").hidden = false; $("cue-detail").textContent = text; };
      chip.addEventListener("mouseenter", open);
      chip.addEventListener("click", open);
      chip.addEventListener("focus", open);
      li.append(chip);
    });
    list.append(li);
  });
  $("output").textContent = r.output;
  $("result").hidden = false;
  $("report-frame").hidden = $("report-heading").hidden = true;
  if (job.report_url) {
    const response = await fetch(job.report_url, { headers: headers() });
    if (response.ok) {
      $("report-frame").srcdoc = await response.text();
      $("report-frame").hidden = $("report-heading").hidden = false;
    }
  }
}

async function refreshRecent() {
  try {
    const response = await fetch("/v1/analyses?limit=10", { headers: headers() });
    if (!response.ok) return;
    const list = $("recent");
    list.replaceChildren();
    for (const job of await response.json()) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.textContent = job.filename;
      link.addEventListener("click", () => follow(job.id));
      li.append(link, document.createTextNode(` · ${job.status}${job.label ? " · " + job.label : ""} · ${new Date(job.created * 1000).toLocaleTimeString()}`));
      list.append(li);
    }
  } catch { /* the list is a convenience */ }
}
refreshRecent();
