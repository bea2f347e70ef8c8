#!/usr/bin/env node
// The peer of `red bench tokenize`: Hugging Face's `tokenizers` (npm package
// tokenizers@0.23.2, Rust) on the same documents, one thread (RAYON_NUM_THREADS=1).
//   node bench/tokenize_hf.js TOKENIZER.json DATA [REPS]
// DATA: one document per line (JSON string, an object's "text", or
// "question"+"\n"+"answer" for GSM8K; other lines as they are). Prints one
// key=value line like red's benches, or impl=hf-tokenizers skipped=1 when the
// package is not installed (NODE_PATH may point at its node_modules).
'use strict';
const fs = require('fs');
let Tokenizer;
try {
  ({ Tokenizer } = require('tokenizers'));
} catch (e) {
  console.log('op=tokenize impl=hf-tokenizers skipped=1 reason=npm_package_tokenizers_not_found');
  process.exit(0);
}

function docs(path) {
  const out = [];
  for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    if (line[0] === '{' || line[0] === '"') {
      const j = JSON.parse(line);
      if (typeof j === 'string') out.push(j);
      else if (typeof j.text === 'string') out.push(j.text);
      else if (typeof j.question === 'string') out.push(j.question + '\n' + (j.answer || ''));
    } else out.push(line);
  }
  return out;
}

async function main() {
  const [tokPath, dataPath, repsArg] = process.argv.slice(2);
  const reps = Number(repsArg || 3);
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  const tok = Tokenizer.fromFile(tokPath);
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cu = process.cpuUsage(c0), loadCpu = (cu.user + cu.system) / 1e6;
  const d = docs(dataPath);
  const bytes = d.reduce((a, s) => a + Buffer.byteLength(s, 'utf8'), 0);
  let best = Infinity, bestCpu = Infinity, ntok = 0;
  for (let r = 0; r < reps; r++) {
    const a = process.hrtime.bigint(), ca = process.cpuUsage();
    const encs = await tok.encodeBatch(d, { addSpecialTokens: false });
    const s = Number(process.hrtime.bigint() - a) / 1e9, cu = process.cpuUsage(ca), cs = (cu.user + cu.system) / 1e6;
    if (cs < bestCpu) bestCpu = cs;
    ntok = encs.reduce((x, e) => x + e.getIds().length, 0);
    if (s < best) best = s;
  }
  console.log(`op=tokenize impl=hf-tokenizers threads=1 docs=${d.length} bytes=${bytes} tokens=${ntok} ` +
              `load_seconds=${loadS.toFixed(3)} load_cpu_seconds=${loadCpu.toFixed(3)} seconds=${best.toFixed(4)} ` +
              `cpu_seconds=${bestCpu.toFixed(4)} mb_per_s=${(bytes / best / 1e6).toFixed(2)} mb_per_cpu_s=${(bytes / bestCpu / 1e6).toFixed(2)} ` +
              `tokens_per_s=${(ntok / best).toFixed(0)}`);
}
main();
