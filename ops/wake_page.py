"""The page `GET /` serves: it reads the wake token from the URL fragment (never sent to the
server, so never in a log), polls `GET /status` every few seconds and offers a wake button."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>StreamrP2P: go live</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; }
#state { font-size: 2rem; font-weight: bold; }
button { font-size: 1.2rem; padding: .5rem 1.5rem; }
</style>
</head>
<body>
<h1>Go live</h1>
<p>Open this page as <code>&lt;wake URL&gt;#token=&lt;wake token&gt;</code>.</p>
<p id="state">&hellip;</p>
<p id="detail"></p>
<button id="wake" disabled>Wake the platform</button>
<p id="answer"></p>
<script>
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const headers = { Authorization: "Bearer " + token };
const show = (id, text) => { document.getElementById(id).textContent = text; };
async function poll() {
  try {
    const response = await fetch("status", { headers, cache: "no-store" });
    const body = await response.json();
    if (!response.ok) { show("state", response.status + ": " + body.error); return; }
    show("state", body.state);
    let detail = "since " + new Date(body.since).toLocaleString() + " (" + body.note + ")";
    if (body.wake_seconds !== null) { detail += "; the wake took " + body.wake_seconds + " s"; }
    show("detail", detail);
    document.getElementById("wake").disabled = body.state !== "paused";
  } catch (error) { show("state", "no answer: " + error); }
}
document.getElementById("wake").addEventListener("click", async () => {
  const response = await fetch("wake", { method: "POST", headers });
  const body = await response.json();
  show("answer", response.status + ": " + (body.error || body.reason));
  poll();
});
poll();
setInterval(poll, 5000);
</script>
</body>
</html>
"""
