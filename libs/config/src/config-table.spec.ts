import { readFileSync } from 'node:fs';
import path from 'node:path';

import { renderConfigTable, withConfigTable } from './config-table';

describe(renderConfigTable.name, () => {
  it('lists every variable with type, default and whether it is required', () => {
    const table = renderConfigTable();
    expect(table).toContain('| `GATEWAY_PORT` | integer | `3000` |');
    expect(table).toMatch(/\| `DATABASE_APP_URL` \| string \| — \| .* \*\*\(required\)\*\* \|/);
    expect(table).toContain('**settlement-worker**');
  });

  it('matches the table committed in README.md (run `npm run docs:config` after changing a schema)', () => {
    const readme = readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    expect(withConfigTable(readme)).toBe(readme);
  });
});
