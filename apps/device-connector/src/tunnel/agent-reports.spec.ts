import type { ControlMessage } from '@payorch/tunnel';

import { AgentReports, MAX_PENDING_REPORTS } from './agent-reports';

describe(AgentReports.name, () => {
  let now: number;
  let delivered: ControlMessage[];
  let dropped: string[];
  let sut: AgentReports;

  beforeEach(() => {
    jest.useFakeTimers();
    now = 0;
    delivered = [];
    dropped = [];
    sut = new AgentReports(
      1000,
      (message) => delivered.push(message),
      (terminalId) => dropped.push(terminalId),
      () => now,
    );
  });

  afterEach(() => jest.useRealTimers());

  const advance = (ms: number) => {
    now += ms;
    jest.advanceTimersByTime(ms);
  };
  const link = (terminalId: string, state: 'up' | 'down' | 'error', detail?: string): ControlMessage => ({
    type: 'link-status',
    terminalId,
    state,
    ...(detail && { detail }),
  });

  it('passes the first report on at once and the latest per terminal of the rest once the interval ended', () => {
    sut.push(link('a', 'error', 'refused'));
    expect(delivered).toEqual([link('a', 'error', 'refused')]);

    for (let i = 0; i < 1000; i++) sut.push(link('a', i % 2 === 0 ? 'up' : 'error'));
    sut.push({
      type: 'agent-status',
      software: 's/1',
      uptimeMs: 1,
      links: [
        { terminalId: 'b', state: 'up' },
        { terminalId: 'a', state: 'up' },
      ],
    });
    advance(999);
    expect(delivered).toHaveLength(1);
    advance(1);
    expect(delivered).toEqual([link('a', 'error', 'refused'), link('a', 'up'), link('b', 'up')]);

    // Nothing held: nothing more. A report after a quiet interval goes at once again.
    advance(5000);
    expect(delivered).toHaveLength(3);
    sut.push(link('b', 'error'));
    expect(delivered).toHaveLength(4);
  });

  it('passes other control messages at once', () => {
    sut.push(link('a', 'up'));
    sut.push(link('a', 'error'));
    sut.push({ type: 'goaway', reason: 'draining' });
    expect(delivered).toEqual([link('a', 'up'), { type: 'goaway', reason: 'draining' }]);
  });

  it('holds at most MAX_PENDING_REPORTS terminals and drops (counts) the rest', () => {
    sut.push(link('first', 'up'));
    for (let i = 0; i < MAX_PENDING_REPORTS + 10; i++) sut.push(link(`t-${i}`, 'error'));
    sut.push(link('t-0', 'up'));
    advance(1000);
    expect(delivered).toHaveLength(1 + MAX_PENDING_REPORTS);
    expect(delivered).toContainEqual(link('t-0', 'up'));
    expect(dropped).toHaveLength(10);
  });

  it('passes nothing on once closed', () => {
    sut.push(link('a', 'up'));
    sut.push(link('a', 'error'));
    sut.close();
    advance(1000);
    sut.push(link('b', 'up'));
    expect(delivered).toEqual([link('a', 'up')]);
  });

  it('passes every report at once with an interval of 0', () => {
    const all: ControlMessage[] = [];
    const each = new AgentReports(0, (message) => all.push(message));
    for (let i = 0; i < 5; i++) each.push(link('a', i % 2 === 0 ? 'up' : 'error'));
    expect(all).toHaveLength(5);
  });
});
