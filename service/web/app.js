// The try-it page: sends each chosen photo to POST /v1/cutout, one request at a time (a page
// never fills the server's queue on its own), and shows the answer beside the original.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
// Options with controls of their own in index.html; other /v1/cutout options found in the
// OpenAPI document get a generic control under "More options".
const OWN_CONTROLS = new Set(["output", "format", "bg_color", "crop", "crop_margin",
                              "max_megapixels"]);
const EXTENSIONS = { png: ".png", webp: ".webp", jpeg: ".jpg", zip: ".zip" };

let chosen = [];          // the File objects last chosen
let queue = Promise.resolve();
let run = 0;              // a new choice or "again" supersedes cards still waiting

function formFields() {
  const fields = {
    output: $("#output").value,
    format: $("#format").value,
    crop: $("#crop").checked ? "true" : "false",
    crop_margin: $("#crop-margin").value.trim() || "0",
  };
  const background = $("input[name=background]:checked").value;
  if (background === "white") fields.bg_color = "ffffff";
  if (background === "colour") fields.bg_color = $("#bg-colour").value.replace("#", "");
  const megapixels = $("#max-megapixels").value.trim();
  if (megapixels) fields.max_megapixels = megapixels;
  for (const control of document.querySelectorAll("#more-options [data-option]")) {
    const value = control.type === "checkbox" ? (control.checked ? "true" : "")
                                              : control.value.trim();
    if (value) fields[control.dataset.option] = value;
  }
  return fields;
}

function parseServerTiming(header) {
  // "queue;dur=0.4, decode;dur=8.1, ..." -> [["queue", 0.4], ["decode", 8.1], ...]
  return (header || "").split(",").map((entry) => {
    const [name, ...params] = entry.trim().split(";");
    const duration = params.map((p) => p.trim()).find((p) => p.startsWith("dur="));
    return [name, duration ? Number(duration.slice(4)) : NaN];
  }).filter(([name]) => name);
}

async function errorInWords(response) {
  let message = response.statusText;
  try {
    const body = await response.json();
    message = body.error || (body.errors && body.errors[0] && body.errors[0].title) || message;
  } catch (_) { /* not JSON: keep the status text */ }
  return `Error ${response.status}: ${message}`;
}

function newCard(file) {
  const card = $("#result-card").content.firstElementChild.cloneNode(true);
  $(".name", card).textContent = file.name;
  $(".original", card).src = URL.createObjectURL(file);
  card.dataset.state = "waiting";
  $("#results").append(card);
  return card;
}

async function cutOut(file, card, thisRun) {
  if (thisRun !== run) return;
  card.dataset.state = "working";
  $(".state", card).textContent = "working...";
  const fields = formFields();
  const body = new FormData();
  body.append("image", file, file.name);
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  const headers = {};
  const key = $("#api-key").value.trim();
  if (key) headers["X-Api-Key"] = key;
  let response;
  try {
    response = await fetch("/v1/cutout", { method: "POST", body, headers });
  } catch (error) {
    return fail(card, `Could not reach the server: ${error.message}`);
  }
  if (!response.ok) return fail(card, await errorInWords(response));
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const format = fields.format;
  if (format === "zip") {
    $(".state", card).textContent = "zip (color.jpg + alpha.png): download it";
  } else {
    $(".cutout", card).src = url;
    $(".state", card).textContent =
      `cutout, ${response.headers.get("X-Width")} x ${response.headers.get("X-Height")} px`;
  }
  const link = $(".download", card);
  link.href = url;
  link.download = file.name.replace(/\.[^.]*$/, "") + EXTENSIONS[format];
  link.textContent = `download ${link.download} (${Math.round(blob.size / 1024)} KiB)`;
  link.hidden = false;
  $(".model", card).textContent = `models ${response.headers.get("X-Model-Version")}`;
  const rows = $(".timings tbody", card);
  for (const [stage, ms] of parseServerTiming(response.headers.get("Server-Timing"))) {
    const row = rows.insertRow();
    row.insertCell().textContent = stage;
    row.insertCell().textContent = Number.isFinite(ms) ? ms.toFixed(1) : "";
  }
  $(".timings", card).hidden = false;
  if (format === "zip") card.dataset.state = "done";
  else await new Promise((resolve) => {  // "done" once the image is shown
    const image = $(".cutout", card);
    if (image.complete && image.naturalWidth) resolve();
    image.addEventListener("load", resolve, { once: true });
    image.addEventListener("error", resolve, { once: true });
  }).then(() => { card.dataset.state = "done"; });
}

function fail(card, message) {
  card.dataset.state = "failed";
  $(".state", card).textContent = "failed";
  const error = $(".error", card);
  error.textContent = message;
  error.hidden = false;
}

function start(files) {
  run += 1;
  const thisRun = run;
  for (const old of document.querySelectorAll("#results img, #results a")) {
    const url = old.src || old.href;
    if (url && url.startsWith("blob:")) URL.revokeObjectURL(url);
  }
  $("#results").replaceChildren();
  chosen = files;
  $("#again").disabled = files.length === 0;
  for (const file of files) {
    const card = newCard(file);
    queue = queue.then(() => cutOut(file, card, thisRun));
  }
}

function optionControl(parameter) {
  const schema = parameter.schema || {};
  const label = document.createElement("label");
  label.title = parameter.description || "";
  label.append(`${parameter.name} `);
  let control;
  if (schema.enum) {
    control = document.createElement("select");
    control.append(new Option("(default)", ""));
    for (const value of schema.enum) control.append(new Option(value, value));
  } else if (schema.type === "boolean") {
    control = document.createElement("input");
    control.type = "checkbox";
  } else {
    control = document.createElement("input");
    control.type = "text";
    control.size = 12;
    if (schema.example !== undefined) control.placeholder = String(schema.example);
  }
  control.dataset.option = parameter.name;
  label.append(control);
  return label;
}

async function addOptionsFromSpec() {
  try {
    const spec = await (await fetch("/openapi.json")).json();
    const parameters = spec.paths["/v1/cutout"].post.parameters || [];
    const box = $("#more-options");
    for (const parameter of parameters) {
      if (parameter.in === "query" && !OWN_CONTROLS.has(parameter.name)) {
        box.append(optionControl(parameter));
        box.hidden = false;
      }
    }
  } catch (_) { /* the page still works with its own controls */ }
}

async function showServerStatus() {
  const status = $("#server-status");
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    const workers = body.workers.length;
    status.textContent = response.ok
      ? `ready: models ${body.model_version}, ${workers} worker(s)`
      : `starting: ${body.error || "workers are loading"}`;
    status.classList.toggle("bad", !response.ok);
    if (!response.ok) setTimeout(showServerStatus, 2000);
  } catch (error) {
    status.textContent = `cannot reach the server: ${error.message}`;
    status.classList.add("bad");
  }
}

function wireUp() {
  const input = $("#files");
  input.addEventListener("change", () => start([...input.files]));
  $("#again").addEventListener("click", () => start(chosen));
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    start([...event.dataTransfer.files].filter((file) => file.type.startsWith("image/")));
  });
  showServerStatus();
  addOptionsFromSpec();
}

document.addEventListener("DOMContentLoaded", wireUp);
