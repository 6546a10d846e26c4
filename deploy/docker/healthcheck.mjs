#!/usr/bin/env node
// Container HEALTHCHECK: `node healthcheck.mjs <PORT_VARIABLE> <default port>` → exit 0 when
// http://127.0.0.1:<port>/health/ready answers 200 within 2 s, else 1. No curl/wget in the slim image.
const [variable, fallback] = process.argv.slice(2);
const port = Number(process.env[variable] || fallback);
fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(2000) }).then(
  (res) => process.exit(res.status === 200 ? 0 : 1),
  () => process.exit(1),
);
