import { DOMAIN_EVENT_TYPES } from './event-types';
import { expandTypes } from './events.service';

describe(expandTypes.name, () => {
  it('keeps exact types and expands each family over every known type of it (so the read is an indexable `type IN`)', () => {
    expect(expandTypes(['terminal.online', 'settlement.*']).sort()).toEqual([
      'settlement.completed',
      'settlement.discrepancy',
      'settlement.failed',
      'terminal.online',
    ]);
  });

  it('selects exactly what the former `startsWith` filter selected, for every family and type', () => {
    const families = [...new Set(DOMAIN_EVENT_TYPES.map((t) => `${t.split('.')[0]}.*`))];
    for (const family of families) {
      expect(expandTypes([family]).sort()).toEqual(DOMAIN_EVENT_TYPES.filter((t) => t.startsWith(family.slice(0, -1))).sort());
    }
    expect(expandTypes(['operation.*', 'operation.completed'])).toHaveLength(DOMAIN_EVENT_TYPES.filter((t) => t.startsWith('operation.')).length);
  });
});
