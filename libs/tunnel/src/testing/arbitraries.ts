import fc from 'fast-check';

import type { ControlMessage } from '../control';
import type { Frame } from '../frames';
import type { LinkDescriptor } from '../link';
import { frameBytes } from './frame-builder';

/** fast-check arbitraries built from the frame union of docs/tunnel.md §4. */

const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

export const streamIdArb = fc.integer({ min: 1, max: 0xffff_ffff });
export const windowArb = fc.integer({ min: 1, max: 0x7fff_ffff });
export const reasonArb = fc.string({ unit: 'grapheme', maxLength: 80 }).filter((text) => utf8Length(text) <= 512);
const hostArb = fc.stringMatching(/^[A-Za-z0-9._:-]{1,60}$/);
const portArb = fc.integer({ min: 1, max: 65_535 });
const timeoutArb = fc.integer({ min: 1, max: 120_000 });
const terminalIdArb = fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/);
const softwareArb = fc.stringMatching(/^[\x20-\x7e]{1,64}$/);
const capabilitiesArb = fc.uniqueArray(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,31}$/), {
  maxLength: 16,
});
const versionsArb = (minLength: number) =>
  fc.uniqueArray(fc.integer({ min: 1, max: 0xffff }), { minLength, maxLength: 16 }).map((versions) => versions.sort((a, b) => a - b));
const maxFrameBytesArb = fc.integer({ min: 4096, max: 16 * 1024 * 1024 });
const timestampArb = fc.maxSafeNat();

export const linkArb: fc.Arbitrary<LinkDescriptor> = fc.oneof(
  fc.record(
    {
      kind: fc.constant('tcp-connect' as const),
      host: hostArb,
      port: portArb,
      connectTimeoutMs: timeoutArb,
    },
    { requiredKeys: ['kind', 'host', 'port'] },
  ),
  fc.record({ kind: fc.constant('tcp-listen' as const), port: portArb, host: hostArb }, { requiredKeys: ['kind', 'port'] }),
  fc.record(
    {
      kind: fc.constant('serial' as const),
      path: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((path) => !/[\u0000-\u001f\u007f]/.test(path) && path.length <= 256),
      baudRate: fc.integer({ min: 50, max: 4_000_000 }),
      dataBits: fc.constantFrom(5 as const, 6 as const, 7 as const, 8 as const),
      stopBits: fc.constantFrom(1 as const, 1.5 as const, 2 as const),
      parity: fc.constantFrom('none' as const, 'even' as const, 'odd' as const, 'mark' as const, 'space' as const),
      rtscts: fc.boolean(),
    },
    { requiredKeys: ['kind', 'path', 'baudRate'] },
  ),
  fc.record(
    {
      kind: fc.constant('relay-tcp' as const),
      host: hostArb,
      port: portArb,
      connectTimeoutMs: timeoutArb,
    },
    { requiredKeys: ['kind', 'host', 'port'] },
  ),
);

const linkStateArb = fc.constantFrom('up' as const, 'down' as const, 'error' as const);

export const controlArb: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({
    type: fc.constant('terminal-list' as const),
    terminals: fc.array(
      fc.record(
        {
          terminalId: terminalIdArb,
          protocol: fc.constantFrom('joinproto' as const, 'jpay' as const, 'ssi-ecr' as const),
          link: linkArb,
          label: fc.string({ maxLength: 128 }),
        },
        { requiredKeys: ['terminalId', 'protocol', 'link'] },
      ),
      { maxLength: 5 },
    ),
  }),
  fc.record(
    {
      type: fc.constant('agent-status' as const),
      software: fc.string({ minLength: 1, maxLength: 64 }),
      hostname: fc.string({ maxLength: 253 }),
      uptimeMs: fc.maxSafeNat(),
      links: fc.array(fc.record({ terminalId: terminalIdArb, state: linkStateArb, detail: reasonArb }, { requiredKeys: ['terminalId', 'state'] }), {
        maxLength: 5,
      }),
    },
    { requiredKeys: ['type', 'software', 'uptimeMs', 'links'] },
  ),
  fc.record(
    {
      type: fc.constant('link-status' as const),
      terminalId: terminalIdArb,
      state: linkStateArb,
      detail: reasonArb,
    },
    { requiredKeys: ['type', 'terminalId', 'state'] },
  ),
  fc.record(
    {
      type: fc.constant('goaway' as const),
      reason: reasonArb,
      reconnectDelayMs: fc.integer({ min: 0, max: 3_600_000 }),
    },
    { requiredKeys: ['type', 'reason'] },
  ),
);

const streamErrorArb = fc.constantFrom(
  'REFUSED' as const,
  'UNREACHABLE' as const,
  'TIMEOUT' as const,
  'NOT_ALLOWED' as const,
  'UNSUPPORTED_LINK' as const,
  'LIMIT_EXCEEDED' as const,
  'PROTOCOL_ERROR' as const,
  'FLOW_CONTROL_ERROR' as const,
  'LINK_ERROR' as const,
  'CANCELLED' as const,
  'INTERNAL' as const,
);

export const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    type: fc.constant('HELLO' as const),
    versions: versionsArb(1),
    maxFrameBytes: maxFrameBytesArb,
    software: softwareArb,
    capabilities: capabilitiesArb,
  }),
  fc.record({
    type: fc.constant('HELLO_ACK' as const),
    accepted: fc.constant(true as const),
    version: fc.integer({ min: 1, max: 0xffff }),
    maxFrameBytes: maxFrameBytesArb,
    software: softwareArb,
    capabilities: capabilitiesArb,
  }),
  fc.record({
    type: fc.constant('HELLO_ACK' as const),
    accepted: fc.constant(false as const),
    code: fc.constantFrom('NO_COMMON_VERSION' as const, 'POLICY' as const),
    versions: versionsArb(0),
    message: reasonArb,
  }),
  fc.record(
    {
      type: fc.constant('OPEN' as const),
      streamId: streamIdArb,
      window: windowArb,
      link: linkArb,
      terminalId: terminalIdArb,
    },
    { requiredKeys: ['type', 'streamId', 'window', 'link'] },
  ),
  fc.record({ type: fc.constant('OPEN_OK' as const), streamId: streamIdArb, window: windowArb }),
  fc.record({
    type: fc.constant('OPEN_FAIL' as const),
    streamId: streamIdArb,
    code: streamErrorArb,
    message: reasonArb,
  }),
  fc.record({
    type: fc.constant('DATA' as const),
    streamId: streamIdArb,
    data: fc.uint8Array({ minLength: 1, maxLength: 2048 }),
  }),
  fc.record({ type: fc.constant('CREDIT' as const), streamId: streamIdArb, increment: windowArb }),
  fc.record({
    type: fc.constant('CLOSE' as const),
    streamId: streamIdArb,
    code: fc.constantFrom('NORMAL' as const, 'LINK_ENDED' as const, 'SHUTDOWN' as const),
    message: reasonArb,
  }),
  fc.record({
    type: fc.constant('RESET' as const),
    streamId: streamIdArb,
    code: streamErrorArb,
    message: reasonArb,
  }),
  fc.record({ type: fc.constant('PING' as const), timestamp: timestampArb }),
  fc.record({ type: fc.constant('PONG' as const), timestamp: timestampArb }),
  fc.record({ type: fc.constant('CONTROL' as const), message: controlArb }),
);

/**
 * Bytes behind a *valid header* (magic, known type, no flags, honest length) with an arbitrary
 * stream id and payload: the boundary is known even when the payload is nonsense.
 */
export const headerValidFrameArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 0x01, max: 0x0c }), fc.integer({ min: 0, max: 0xffff_ffff }), fc.uint8Array({ maxLength: 300 }))
  .map(([type, streamId, payload]) => frameBytes(type, streamId, Array.from(payload)));
