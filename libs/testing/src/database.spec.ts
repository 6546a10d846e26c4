import { staleTemplates, TEMPLATE_KEEP_MS } from './database';

describe(staleTemplates.name, () => {
  const now = Date.parse('2026-12-06T01:00:00Z');

  it("keeps another checkout's recent template, drops old ones, ones without a build time and half-built ones", () => {
    expect(
      staleTemplates(
        [
          { datname: 'payorch_tpl_recent', built: String(now - 5 * 60 * 1000) },
          { datname: 'payorch_tpl_old', built: String(now - TEMPLATE_KEEP_MS - 1) },
          { datname: 'payorch_tpl_legacy', built: null },
          { datname: 'payorch_tpl_garbled', built: 'not a time' },
          { datname: 'payorch_tpl_abc_build', built: null },
        ],
        now,
      ),
    ).toEqual(['payorch_tpl_old', 'payorch_tpl_legacy', 'payorch_tpl_garbled', 'payorch_tpl_abc_build']);
  });
});
