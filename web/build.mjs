// Builds the dashboard into core/api/dashboard/dist, which the Go binary
// embeds: app.js (with uPlot), app.css and index.html. The output is
// deterministic, so the committed dist can be checked against a rebuild.
import * as esbuild from "esbuild";
import { copyFile, mkdir, readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const out = fileURLToPath(new URL("../core/api/dashboard/dist/", import.meta.url));
const src = (p) => fileURLToPath(new URL(`src/${p}`, import.meta.url));

const uplot = JSON.parse(await readFile(new URL("node_modules/uplot/package.json", import.meta.url), "utf8"));

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await esbuild.build({
  entryPoints: [src("main.ts")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outfile: `${out}app.js`,
  // uPlot's header is a plain comment, which minifying drops: keep its notice.
  banner: { js: `/*! uPlot.js (μPlot) v${uplot.version}, Copyright (c) 2025 Leon Sorokin, MIT License, https://github.com/leeoniya/uPlot */` },
  charset: "utf8",
  logLevel: "info",
});
await copyFile(src("index.html"), `${out}index.html`);
