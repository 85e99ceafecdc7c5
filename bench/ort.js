// bench/ort.js: onnxruntime side of the model bench (forward passes only: onnxruntime has no input
// gradients): each network of bench/models.json from the same ONNX file lumen loads, at each of its batch
// sizes, with the peak resident memory of each workload. onnxruntime-node comes from npm (bench/package.json;
// install inside bench/ with `ONNXRUNTIME_NODE_INSTALL=skip npm install`, which keeps the CPU library the
// package ships and downloads nothing else). Run: node bench/ort.js [models=all reps=5 reps_big=2 warmup=3
// batches=<from models.json> threads=2] (warmup: runs before the timed ones at batch 1, one at larger
// batches). Prints bench/report.py's JSON lines with "side": "ort".
"use strict";
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");

const REPO = path.dirname(__dirname);
const defaults = { models: "all", batches: "", reps: 5, reps_big: 2, warmup: 3, threads: 2 };

function args() {
  const p = { ...defaults };
  for (const a of process.argv.slice(2)) {
    const i = a.indexOf("=");
    const k = a.slice(0, i);
    if (i < 0 || !(k in defaults)) {
      console.error(`ort.js: unknown argument '${a}' (known: ${Object.keys(defaults).sort().join(" ")})`);
      process.exit(2);
    }
    p[k] = typeof defaults[k] === "number" ? Number(a.slice(i + 1)) : a.slice(i + 1);
  }
  return p;
}

function rssReset() {
  try { fs.writeFileSync("/proc/self/clear_refs", "5"); } catch (e) { /* not Linux */ }
}

function rssPeak() {
  try {
    const m = fs.readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s*(\d+)/);
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch (e) { return undefined; }
}

async function main() {
  let ort;
  try {
    ort = require(path.join(__dirname, "node_modules", "onnxruntime-node"));
  } catch (e) {
    console.error("ort.js: onnxruntime-node is not installed (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install)");
    process.exit(0);
  }
  const p = args();
  const specs = JSON.parse(fs.readFileSync(path.join(__dirname, "models.json"), "utf8"));
  const known = specs.map((s) => s.name);
  const wanted = p.models === "all" ? known : p.models.split(",").filter((v) => v);
  for (const v of wanted) {
    if (!known.includes(v)) {
      // a typo must not run an empty bench that reports nothing
      console.error(`ort.js: models=${p.models}: no '${v}' (known: ${known.join(",")})`);
      process.exit(2);
    }
  }
  for (const spec of specs) {
    if (!wanted.includes(spec.name)) continue;
    const file = path.join(REPO, spec.onnx);
    if (!fs.existsSync(file)) { console.error(`ort.js: skipping ${spec.name}: ${spec.onnx} not found`); continue; }
    let bytes = fs.readFileSync(file);
    if (file.endsWith(".gz")) bytes = zlib.gunzipSync(bytes);
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: p.threads, interOpNumThreads: 1, executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
    const batches = p.batches ? p.batches.split(",").map(Number) : spec.batches;
    for (const batch of batches) {
      const n = batch * 3 * spec.size * spec.size;
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = Math.random() * 2 - 1;
      const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, [batch, 3, spec.size, spec.size]) };
      const reps = batch === 1 ? p.reps : p.reps_big;
      rssReset();
      try {
        for (let w = 0; w < (batch === 1 ? p.warmup : 1); w++) await session.run(feeds); // warmup
      } catch (e) { // a model exported with a fixed batch size
        console.error(`ort.js: skipping ${spec.name} at batch ${batch}: ${String(e.message).split("\n")[0]}`);
        continue;
      }
      const ms = [];
      for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        ms.push(Math.round(Number(process.hrtime.bigint() - t0) / 100) / 1e4);
      }
      console.log(JSON.stringify({ bench: "model", side: "ort", case: `${spec.name} ${spec.size}`, batch, pass: "fwd",
                                   ms, threads: p.threads, rss_mib: rssPeak() }));
    }
    await session.release();
  }
}

main();
