import { ByteReader, ByteWriter, decodeUtf8, payloadError, utf8Bytes } from './bytes';
import { CLOSE_CODE_BY_NUMBER, CLOSE_CODES, HELLO_REJECT_BY_NUMBER, HELLO_REJECT_CODES, STREAM_ERROR_BY_NUMBER, STREAM_ERROR_CODES } from './codes';
import {
  FRAME_FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  FRAME_LEAD_BYTE,
  FRAME_MAGIC_NIBBLE,
  MAX_CAPABILITIES,
  MAX_CAPABILITY_BYTES,
  MAX_HELLO_VERSIONS,
  MAX_MAX_FRAME_BYTES,
  MAX_REASON_BYTES,
  MAX_SOFTWARE_BYTES,
  MAX_WINDOW,
  MIN_MAX_FRAME_BYTES,
} from './constants';
import { ControlMessageSchema } from './control';
import { TunnelProtocolError } from './errors';
import { FRAME_TYPES, frameTypeName, isConnectionFrameType, type FrameTypeName } from './frame-types';
import type { Frame, HelloAckFrame, HelloFrame, OpenFrame } from './frames';
import { describeIssues, OpenRequestSchema } from './link';

/**
 * Frame codec (docs/tunnel.md §3-§4). Rules are named `[Tn-x]` after the section of docs/tunnel.md
 * that states them. Decoding never throws on input bytes; encoding throws `TunnelProtocolError`
 * when asked to encode a frame that breaks a rule (a programmer error).
 */

export type DecodeEvent = { kind: 'frame'; frame: Frame } | { kind: 'garbage'; bytes: Uint8Array; error: TunnelProtocolError };

export interface FrameHeader {
  type: FrameTypeName;
  streamId: number;
  payloadLength: number;
}

export interface CodecOptions {
  /** Largest accepted frame, header included. Required: there is no unbounded mode. */
  maxFrameBytes: number;
}

/**
 * Checks the 12-byte header at the start of `bytes`. Every error here leaves the frame boundary
 * unknown, so it carries reaction `close-tunnel` (fatal on a byte stream).
 */
export function parseFrameHeader(bytes: Uint8Array, maxFrameBytes: number): FrameHeader | TunnelProtocolError {
  const view = new DataView(bytes.buffer, bytes.byteOffset, FRAME_HEADER_BYTES);
  const lead = view.getUint8(0);
  // [T3-1] byte 0 high nibble is the magic 0xA.
  if (lead >> 4 !== FRAME_MAGIC_NIBBLE) {
    return fatal('BAD_MAGIC', `lead byte 0x${hex(lead)} is not a tunnel frame`);
  }
  // [T3-2] byte 0 low nibble is the header format version; only format 1 exists.
  if ((lead & 0x0f) !== FRAME_FORMAT_VERSION) {
    return fatal('UNSUPPORTED_FORMAT', `frame format ${lead & 0x0f} is not supported`);
  }
  const typeByte = view.getUint8(1);
  const type = frameTypeName(typeByte);
  // [T3-3] the type byte is one of the frame types of §4.
  if (type === undefined) return fatal('UNKNOWN_FRAME_TYPE', `frame type 0x${hex(typeByte)}`);
  // [T3-4] format 1 defines no flags: the field is 0.
  const flags = view.getUint16(2);
  if (flags !== 0) return fatal('BAD_FLAGS', `flags 0x${flags.toString(16)} on ${type}`, type);
  const streamId = view.getUint32(4);
  const payloadLength = view.getUint32(8);
  // [T3-5] header + payload never exceed maxFrameBytes.
  if (payloadLength > maxFrameBytes - FRAME_HEADER_BYTES) {
    return fatal('FRAME_TOO_LARGE', `${type} payload of ${payloadLength} bytes exceeds the limit`, type, streamId);
  }
  return { type, streamId, payloadLength };
}

/**
 * Decodes one WebSocket message, which is exactly one frame ([T3-7]). Header errors are reported
 * with reaction `drop-frame`: message framing keeps the next message intact.
 */
export function decodeFrame(message: Uint8Array, options: CodecOptions): DecodeEvent {
  if (message.length < FRAME_HEADER_BYTES) {
    return garbage(message, new TunnelProtocolError('LENGTH_MISMATCH', `message of ${message.length} bytes`, 'drop-frame'));
  }
  const header = parseFrameHeader(message, options.maxFrameBytes);
  if (header instanceof TunnelProtocolError) {
    return garbage(message, header.withReaction('drop-frame'));
  }
  // [T3-7] one WebSocket message carries exactly one frame.
  if (message.length !== FRAME_HEADER_BYTES + header.payloadLength) {
    const error = new TunnelProtocolError(
      'LENGTH_MISMATCH',
      `header announces ${header.payloadLength} payload bytes, message has ${message.length - FRAME_HEADER_BYTES}`,
      'drop-frame',
      { frameType: header.type, streamId: header.streamId },
    );
    return garbage(message, error);
  }
  return decodeFrameBody(header, message.subarray(FRAME_HEADER_BYTES), message);
}

/** Decodes a payload whose header was already checked. `frameBytes` is reported on garbage. */
export function decodeFrameBody(header: FrameHeader, payload: Uint8Array, frameBytes: Uint8Array): DecodeEvent {
  const { type, streamId } = header;
  // [T3-6] connection frames use stream 0, stream frames a stream id >= 1.
  if (isConnectionFrameType(type) !== (streamId === 0)) {
    const error = new TunnelProtocolError('BAD_STREAM_ID', `${type} on stream ${streamId}`, 'drop-frame', {
      frameType: type,
      streamId,
    });
    return garbage(frameBytes, error);
  }
  // Most frames of a transfer are DATA, whose payload is the bytes themselves: no reader (a DataView per
  // frame showed in the relay profile). An empty one goes the general way to its `empty DATA` error.
  if (type === 'DATA' && payload.length > 0) return { kind: 'frame', frame: { type, streamId, data: payload } };
  try {
    return { kind: 'frame', frame: decodePayload(header, new ByteReader(payload)) };
  } catch (error) {
    if (!(error instanceof TunnelProtocolError)) throw error;
    const reaction = header.streamId === 0 ? 'drop-frame' : 'fail-stream';
    return garbage(
      frameBytes,
      new TunnelProtocolError(error.code, `${header.type}: ${error.message}`, reaction, {
        frameType: header.type,
        streamId: header.streamId,
      }),
    );
  }
}

function decodePayload(header: FrameHeader, reader: ByteReader): Frame {
  const { streamId } = header;
  switch (header.type) {
    case 'HELLO': {
      const versions = readVersions(reader, 1);
      const maxFrameBytes = reader.u32();
      const software = reader.str8();
      const capabilities = readCapabilities(reader);
      reader.end();
      return checkHello({ type: 'HELLO', versions, maxFrameBytes, software, capabilities });
    }
    case 'HELLO_ACK':
      return decodeHelloAck(reader);
    case 'OPEN': {
      const window = reader.u32();
      const request = parseJson(reader.rest(), (value) => {
        const result = OpenRequestSchema.safeParse(value);
        if (!result.success) {
          throw new TunnelProtocolError('INVALID_LINK', describeIssues(result.error), 'fail-stream');
        }
        return result.data;
      });
      return checkOpen({ type: 'OPEN', streamId, window, ...request });
    }
    case 'OPEN_OK': {
      const window = checkWindow(reader.u32());
      reader.end();
      return { type: 'OPEN_OK', streamId, window };
    }
    case 'OPEN_FAIL':
    case 'RESET': {
      const code = lookupCode(STREAM_ERROR_BY_NUMBER, reader.u16(), 'stream error');
      return { type: header.type, streamId, code, message: readReason(reader) };
    }
    case 'DATA': {
      // [T4-DATA-1] DATA carries at least one byte.
      if (reader.remaining === 0) throw payloadError('empty DATA');
      return { type: 'DATA', streamId, data: reader.rest() };
    }
    case 'CREDIT': {
      const increment = checkWindow(reader.u32());
      reader.end();
      return { type: 'CREDIT', streamId, increment };
    }
    case 'CLOSE': {
      const code = lookupCode(CLOSE_CODE_BY_NUMBER, reader.u16(), 'close');
      return { type: 'CLOSE', streamId, code, message: readReason(reader) };
    }
    case 'PING':
    case 'PONG': {
      // [T4-PING-1] exactly a u64 millisecond timestamp <= 2^53-1.
      const timestamp = reader.u64();
      reader.end();
      return { type: header.type, timestamp };
    }
    case 'CONTROL': {
      const message = parseJson(reader.rest(), (value) => {
        const result = ControlMessageSchema.safeParse(value);
        if (!result.success) {
          throw new TunnelProtocolError('INVALID_CONTROL', describeIssues(result.error), 'drop-frame');
        }
        return result.data;
      });
      return { type: 'CONTROL', message };
    }
  }
}

function decodeHelloAck(reader: ByteReader): HelloAckFrame {
  const status = reader.u8();
  if (status === 1) {
    const version = reader.u16();
    const maxFrameBytes = reader.u32();
    const software = reader.str8();
    const capabilities = readCapabilities(reader);
    reader.end();
    return checkHelloAck({
      type: 'HELLO_ACK',
      accepted: true,
      version,
      maxFrameBytes,
      software,
      capabilities,
    });
  }
  // [T4-ACK-1] status is 1 (accepted) or 0 (rejected).
  if (status !== 0) throw payloadError(`HELLO_ACK status ${status}`);
  const code = lookupCode(HELLO_REJECT_BY_NUMBER, reader.u16(), 'hello reject');
  const versions = readVersions(reader, 0);
  const message = reader.str16();
  reader.end();
  return checkHelloAck({ type: 'HELLO_ACK', accepted: false, code, versions, message });
}

function readVersions(reader: ByteReader, min: number): number[] {
  const count = reader.u8();
  const versions: number[] = [];
  for (let i = 0; i < count; i++) versions.push(reader.u16());
  checkVersions(versions, min);
  return versions;
}

function readCapabilities(reader: ByteReader): string[] {
  const count = reader.u8();
  const capabilities: string[] = [];
  for (let i = 0; i < count; i++) capabilities.push(reader.str8());
  return capabilities;
}

function readReason(reader: ByteReader): string {
  // [T4-REASON-1] reasons are UTF-8 of at most 512 bytes.
  if (reader.remaining > MAX_REASON_BYTES) throw payloadError(`reason longer than ${MAX_REASON_BYTES} bytes`);
  return decodeUtf8(reader.rest());
}

function parseJson<T>(bytes: Uint8Array, validate: (value: unknown) => T): T {
  const text = decodeUtf8(bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TunnelProtocolError('BAD_JSON', 'payload is not JSON', 'drop-frame');
  }
  return validate(value);
}

function lookupCode<K extends string>(table: Map<number, K>, value: number, what: string): K {
  const code = table.get(value);
  if (code === undefined) throw new TunnelProtocolError('UNKNOWN_CODE', `${what} code ${value}`, 'drop-frame');
  return code;
}

// ---- rules shared by decoder and encoder ----

/** [T4-HELLO-1] 1..16 (0..16 in a rejection) versions, each 1..65535, strictly ascending. */
function checkVersions(versions: readonly number[], min: number): void {
  if (versions.length < min || versions.length > MAX_HELLO_VERSIONS) {
    throw payloadError(`${versions.length} versions (allowed ${min}..${MAX_HELLO_VERSIONS})`);
  }
  versions.forEach((version, i) => {
    if (!Number.isInteger(version) || version < 1 || version > 0xffff) throw payloadError(`version ${version}`);
    if (i > 0 && version <= versions[i - 1]) throw payloadError('versions not strictly ascending');
  });
}

/** [T4-HELLO-2] maxFrameBytes within [4 KiB, 16 MiB]. */
function checkMaxFrameBytes(value: number): void {
  if (!Number.isInteger(value) || value < MIN_MAX_FRAME_BYTES || value > MAX_MAX_FRAME_BYTES) {
    throw payloadError(`maxFrameBytes ${value} outside ${MIN_MAX_FRAME_BYTES}..${MAX_MAX_FRAME_BYTES}`);
  }
}

/** [T4-HELLO-3] software is 1..64 printable ASCII characters. */
function checkSoftware(software: string): void {
  if (!/^[\x20-\x7e]+$/.test(software) || software.length > MAX_SOFTWARE_BYTES) {
    throw payloadError('software must be 1..64 printable ASCII characters');
  }
}

/** [T4-HELLO-4] at most 16 distinct capabilities of 1..32 characters [a-z0-9._-]. */
function checkCapabilities(capabilities: readonly string[]): void {
  if (capabilities.length > MAX_CAPABILITIES) throw payloadError(`${capabilities.length} capabilities`);
  if (new Set(capabilities).size !== capabilities.length) throw payloadError('duplicate capability');
  for (const capability of capabilities) {
    if (capability.length > MAX_CAPABILITY_BYTES || !/^[a-z0-9][a-z0-9._-]*$/.test(capability)) {
      throw payloadError('capability must be 1..32 characters of [a-z0-9._-]');
    }
  }
}

function checkHello(frame: HelloFrame): HelloFrame {
  checkVersions(frame.versions, 1);
  checkMaxFrameBytes(frame.maxFrameBytes);
  checkSoftware(frame.software);
  checkCapabilities(frame.capabilities);
  return frame;
}

function checkHelloAck(frame: HelloAckFrame): HelloAckFrame {
  if (frame.accepted) {
    checkVersions([frame.version], 1);
    checkMaxFrameBytes(frame.maxFrameBytes);
    checkSoftware(frame.software);
    checkCapabilities(frame.capabilities);
  } else {
    checkVersions(frame.versions, 0);
    if (utf8Bytes(frame.message).length > MAX_REASON_BYTES) throw payloadError('reason too long');
  }
  return frame;
}

/** [T4-OPEN-1] the initial window is 1..2^31-1. */
function checkOpen(frame: OpenFrame): OpenFrame {
  checkWindow(frame.window);
  return frame;
}

/** [T4-CREDIT-1] windows and credit increments are 1..2^31-1. */
function checkWindow(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_WINDOW) throw payloadError(`window ${value}`);
  return value;
}

// ---- encoder ----

/**
 * Encodes one frame (header + payload) into a fresh buffer.
 * @param maxFrameBytes the receiving side's limit; exceeding it throws `FRAME_TOO_LARGE`.
 * @throws TunnelProtocolError when the frame breaks a rule of §4.
 */
export function encodeFrame(frame: Frame, maxFrameBytes = MAX_MAX_FRAME_BYTES): Uint8Array {
  const payload = encodePayload(frame);
  const streamId = 'streamId' in frame ? frame.streamId : 0;
  if (isConnectionFrameType(frame.type) !== (streamId === 0) || !Number.isInteger(streamId) || streamId < 0 || streamId > 0xffff_ffff) {
    throw new TunnelProtocolError('BAD_STREAM_ID', `${frame.type} on stream ${streamId}`, 'drop-frame');
  }
  const total = FRAME_HEADER_BYTES + payload.length;
  if (total > maxFrameBytes) {
    throw new TunnelProtocolError('FRAME_TOO_LARGE', `${frame.type} of ${total} bytes exceeds ${maxFrameBytes}`, 'drop-frame');
  }
  const out = new Uint8Array(total);
  writeHeader(out, FRAME_TYPES[frame.type], streamId, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Encodes a DATA frame whose payload is the concatenation of `parts` (a stream's queued writes, as
 * views): the header and the parts are copied once into the frame, which is the only copy of the
 * bytes on the send path. Equivalent to `encodeFrame({ type: 'DATA', streamId, data: concat(parts) })`.
 * @param length the parts' total length, 1..`maxFrameBytes` - 12.
 * @param into a buffer of exactly 12 + `length` bytes to write the frame into (a recycled one); default a new one.
 * @throws TunnelProtocolError as `encodeFrame` does for an empty or oversized DATA or a bad stream id.
 */
export function encodeDataFrame(
  streamId: number,
  parts: readonly Uint8Array[],
  length: number,
  maxFrameBytes = MAX_MAX_FRAME_BYTES,
  into?: Uint8Array,
): Uint8Array {
  if (length === 0) throw payloadError('empty DATA');
  if (!Number.isInteger(streamId) || streamId <= 0 || streamId > 0xffff_ffff) {
    throw new TunnelProtocolError('BAD_STREAM_ID', `DATA on stream ${streamId}`, 'drop-frame');
  }
  const total = FRAME_HEADER_BYTES + length;
  if (total > maxFrameBytes) throw new TunnelProtocolError('FRAME_TOO_LARGE', `DATA of ${total} bytes exceeds ${maxFrameBytes}`, 'drop-frame');
  if (into !== undefined && into.length !== total) throw new RangeError(`a DATA frame of ${total} bytes does not fill a buffer of ${into.length}`);
  // allocUnsafe: every byte is written below (header, then the parts that add up to `length`).
  const out = into ?? Buffer.allocUnsafe(total);
  writeHeader(out, FRAME_TYPES.DATA, streamId, length);
  let offset = FRAME_HEADER_BYTES;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  if (offset !== total) throw new RangeError(`DATA parts add up to ${offset - FRAME_HEADER_BYTES} bytes, not ${length}`);
  return out;
}

/** The 12-byte header: lead byte, type, flags 0, stream id, payload length (big-endian). */
function writeHeader(out: Uint8Array, type: number, streamId: number, payloadLength: number): void {
  out[0] = FRAME_LEAD_BYTE;
  out[1] = type;
  out[2] = 0;
  out[3] = 0;
  writeU32(out, 4, streamId);
  writeU32(out, 8, payloadLength);
}

function writeU32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

function encodePayload(frame: Frame): Uint8Array {
  switch (frame.type) {
    case 'HELLO': {
      checkHello(frame);
      const writer = new ByteWriter().u8(frame.versions.length);
      frame.versions.forEach((version) => writer.u16(version));
      writer.u32(frame.maxFrameBytes).str8(frame.software);
      return writeCapabilities(writer, frame.capabilities).finish();
    }
    case 'HELLO_ACK': {
      checkHelloAck(frame);
      if (frame.accepted) {
        const writer = new ByteWriter().u8(1).u16(frame.version).u32(frame.maxFrameBytes).str8(frame.software);
        return writeCapabilities(writer, frame.capabilities).finish();
      }
      const writer = new ByteWriter().u8(0).u16(HELLO_REJECT_CODES[frame.code]).u8(frame.versions.length);
      frame.versions.forEach((version) => writer.u16(version));
      return writer.str16(frame.message).finish();
    }
    case 'OPEN': {
      checkOpen(frame);
      const request = OpenRequestSchema.safeParse({
        link: frame.link,
        terminalId: frame.terminalId,
      });
      if (!request.success) {
        throw new TunnelProtocolError('INVALID_LINK', describeIssues(request.error), 'fail-stream');
      }
      return new ByteWriter()
        .u32(frame.window)
        .bytes(utf8Bytes(JSON.stringify(request.data)))
        .finish();
    }
    case 'OPEN_OK':
      return new ByteWriter().u32(checkWindow(frame.window)).finish();
    case 'OPEN_FAIL':
    case 'RESET':
      return writeReason(STREAM_ERROR_CODES[frame.code], frame.message);
    case 'DATA':
      if (frame.data.length === 0) throw payloadError('empty DATA');
      return frame.data;
    case 'CREDIT':
      return new ByteWriter().u32(checkWindow(frame.increment)).finish();
    case 'CLOSE':
      return writeReason(CLOSE_CODES[frame.code], frame.message);
    case 'PING':
    case 'PONG':
      if (!Number.isSafeInteger(frame.timestamp) || frame.timestamp < 0) throw payloadError('timestamp');
      return new ByteWriter().u64(frame.timestamp).finish();
    case 'CONTROL': {
      const message = ControlMessageSchema.safeParse(frame.message);
      if (!message.success) {
        throw new TunnelProtocolError('INVALID_CONTROL', describeIssues(message.error), 'drop-frame');
      }
      return utf8Bytes(JSON.stringify(message.data));
    }
  }
}

function writeCapabilities(writer: ByteWriter, capabilities: readonly string[]): ByteWriter {
  writer.u8(capabilities.length);
  capabilities.forEach((capability) => writer.str8(capability));
  return writer;
}

function writeReason(code: number, message: string): Uint8Array {
  const text = utf8Bytes(message);
  if (text.length > MAX_REASON_BYTES) throw payloadError(`reason longer than ${MAX_REASON_BYTES} bytes`);
  return new ByteWriter().u16(code).bytes(text).finish();
}

/** Cuts a human-readable reason to the 512-byte wire limit without splitting a UTF-8 sequence. */
export function truncateReason(message: string): string {
  if (utf8Bytes(message).length <= MAX_REASON_BYTES) return message;
  let out = '';
  let bytes = 0;
  for (const char of message) {
    const size = utf8Bytes(char).length;
    if (bytes + size > MAX_REASON_BYTES - 3) break;
    out += char;
    bytes += size;
  }
  return `${out}...`;
}

function fatal(
  code: 'BAD_MAGIC' | 'UNSUPPORTED_FORMAT' | 'UNKNOWN_FRAME_TYPE' | 'BAD_FLAGS' | 'FRAME_TOO_LARGE',
  message: string,
  frameType?: FrameTypeName,
  streamId?: number,
): TunnelProtocolError {
  return new TunnelProtocolError(code, message, 'close-tunnel', { frameType, streamId });
}

function garbage(bytes: Uint8Array, error: TunnelProtocolError): DecodeEvent {
  return { kind: 'garbage', bytes, error };
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
