// The watch page's player: friends' edges first (HTTP-FLV through mpegts.js), the origin's HLS as
// the fallback (hls.js, else the browser's own HLS), switching when a source fails or stalls.
// Each attempt asks /api/v1/play again: an edge URL's ticket opens one session, for a minute.
"use strict";
(() => {
  const root = document.getElementById("player");
  if (!root) return;
  const stream = root.dataset.stream;
  const probeMs = Number(root.dataset.probeMs);
  const stallMs = Number(root.dataset.stallMs);
  const video = document.getElementById("video");
  const source = document.getElementById("source");
  const offMesh = document.getElementById("off-mesh");
  const failedEdges = new Set(); // node ids that failed or stalled during this visit
  // An https page may not fetch http: media (mixed content: the browser blocks it), so such an
  // edge is never tried from one; edges with an edge name and a certificate offer https: URLs.
  const secure = location.protocol === "https:";
  let current = null; // {kind, node, teardown}
  let watchdog = null;
  let generation = 0; // bumps on every switch, so late events of an old player are ignored

  function say(kind, text) {
    source.dataset.kind = kind;
    source.textContent = text;
  }

  function stop() {
    clearInterval(watchdog);
    watchdog = null;
    if (current) current.teardown();
    current = null;
    video.removeAttribute("src");
    video.load();
  }

  // The picture must move: a source whose currentTime stands still for stallMs is given up.
  function watchProgress(mine, onStall) {
    let last = -1;
    let movedAt = performance.now();
    watchdog = setInterval(() => {
      if (mine !== generation) return;
      if (video.currentTime !== last) {
        last = video.currentTime;
        movedAt = performance.now();
      } else if (performance.now() - movedAt > stallMs) {
        onStall();
      }
    }, 500);
  }

  async function askPlay() {
    const response = await fetch(`/api/v1/play/${encodeURIComponent(stream)}`, { cache: "no-store" });
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`the coordinator answered ${response.status}`);
    return response.json();
  }

  // Cheap reachability: any HTTP answer from the edge's root (even an error page) means this
  // device reaches it; a refused or silent connection (not on the mesh) does not. No ticket is
  // spent, and no-cors needs nothing from the edge.
  async function reachable(url) {
    const root = new URL("/", url).href;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), probeMs);
    try {
      await fetch(root, { mode: "no-cors", cache: "no-store", signal: abort.signal });
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  function playEdge(edge, mine) {
    const player = window.mpegts.createPlayer(
      { type: "flv", isLive: true, url: edge.flv_url },
      { enableWorker: false, enableStashBuffer: false, liveBufferLatencyChasing: true },
    );
    player.on(window.mpegts.Events.ERROR, () => {
      if (mine === generation) giveUpEdge(edge.node_id, "failed");
    });
    player.attachMediaElement(video);
    player.load();
    video.play().catch(() => {});
    current = { kind: "edge", node: edge.node_id, teardown: () => player.destroy() };
    say("edge", `Playing from a friend's edge (node ${edge.node_id}).`);
    watchProgress(mine, () => giveUpEdge(edge.node_id, "stalled"));
  }

  function playOrigin(origin, mine, why) {
    const url = origin.hls_url;
    let teardown = () => {};
    let how;
    // hls.js wherever Media Source Extensions exist: Chromium's own HLS stood still on SRS's
    // live HLS (a real SRS 6 run). The browser's own HLS where there is no MSE (older iPhones).
    if (window.Hls && window.Hls.isSupported()) {
      const hls = new window.Hls({ enableWorker: false });
      hls.on(window.Hls.Events.ERROR, (_, data) => {
        if (data.fatal && mine === generation) retryLater("the origin's HLS failed");
      });
      hls.loadSource(url);
      hls.attachMedia(video);
      teardown = () => hls.destroy();
      how = "hls.js";
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
      how = "the browser's own HLS";
    } else {
      say("none", `This browser cannot play HLS. Open ${url} in a player such as VLC.`);
      return;
    }
    video.play().catch(() => {});
    current = { kind: "origin", node: null, teardown };
    say("origin", `Playing from the origin (HLS through ${how})${why ? ": " + why : ""}.`);
    watchProgress(mine, () => retryLater("the origin stalled"));
  }

  function giveUpEdge(node, what) {
    failedEdges.add(node);
    start(`node ${node} ${what}`);
  }

  function retryLater(why) {
    const mine = ++generation;
    stop();
    say("none", `${why}; trying again in 3 s…`);
    setTimeout(() => {
      if (mine === generation) start();
    }, 3000);
  }

  async function start(previous) {
    const mine = ++generation;
    stop();
    let plan;
    try {
      plan = await askPlay();
    } catch (error) {
      if (mine === generation) retryLater(`Cannot ask where to play (${error.message})`);
      return;
    }
    if (mine !== generation) return;
    if (plan === null) {
      failedEdges.clear(); // when it is live again, every edge deserves another try
      say("none", `${stream} is not live right now; this page checks again every 10 s.`);
      setTimeout(() => {
        if (mine === generation) start();
      }, 10000);
      return;
    }
    const offered = plan.edges.filter((edge) => !failedEdges.has(edge.node_id));
    const edges = offered.filter((edge) => !secure || edge.flv_url.startsWith("https:"));
    const blocked = offered.length - edges.length;
    const canPlayEdges = Boolean(window.mpegts && window.mpegts.isSupported());
    if (edges.length && canPlayEdges) {
      say("none", `Checking ${edges.length} friend's edge(s)…`);
      const answers = await Promise.all(edges.map((edge) => reachable(edge.flv_url)));
      if (mine !== generation) return;
      const edge = edges.find((_, index) => answers[index]);
      if (edge) {
        offMesh.hidden = true;
        playEdge(edge, mine);
        return;
      }
      offMesh.hidden = false;
    }
    if (!plan.origin) {
      retryLater("No friend's edge is reachable and no origin is configured");
      return;
    }
    let why = previous;
    if (!why && !plan.edges.length) why = "no friend's edge has room";
    else if (!why && blocked && !edges.length) {
      why = `this page is served over https and the friends' edge(s) offered serve only plain http, which the browser blocks`;
    }
    else if (!why && !canPlayEdges) {
      why = "this browser cannot play from friends' edges (it has no Media Source Extensions)";
    } else if (!why) why = "no friend's edge is reachable from here";
    playOrigin(plan.origin, mine, why);
  }

  start();
})();
