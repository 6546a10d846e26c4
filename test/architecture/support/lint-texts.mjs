#!/usr/bin/env node
// Lints source texts as if they were files at the given paths, with the repository's ESLint config
// (the ESLint API, lintText with a filePath). A separate process because jest cannot load the ESM
// flat config. argv[2]: JSON [{ "filePath": "<relative to the repo>", "text": "…" }];
// stdout: JSON [{ filePath, messages: [{ ruleId, severity, line, message }] }].
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ESLint } from 'eslint';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const cases = JSON.parse(process.argv[2] ?? '[]');
const eslint = new ESLint({ cwd: ROOT });
const results = [];
for (const { filePath, text } of cases) {
  const [result] = await eslint.lintText(text, {
    filePath: path.join(ROOT, filePath),
    warnIgnored: true,
  });
  results.push({
    filePath,
    messages: result.messages.map(({ ruleId, severity, line, message }) => ({
      ruleId,
      severity,
      line,
      message,
    })),
  });
}
process.stdout.write(JSON.stringify(results));
