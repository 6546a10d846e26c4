/** Frame type byte (docs/tunnel.md, "Frame types"). */
export const FRAME_TYPES = {
  HELLO: 0x01,
  HELLO_ACK: 0x02,
  OPEN: 0x03,
  OPEN_OK: 0x04,
  OPEN_FAIL: 0x05,
  DATA: 0x06,
  CREDIT: 0x07,
  CLOSE: 0x08,
  RESET: 0x09,
  PING: 0x0a,
  PONG: 0x0b,
  CONTROL: 0x0c,
} as const;

export type FrameTypeName = keyof typeof FRAME_TYPES;

const NAME_BY_BYTE = new Map<number, FrameTypeName>((Object.entries(FRAME_TYPES) as [FrameTypeName, number][]).map(([name, byte]) => [byte, name]));

export function frameTypeName(byte: number): FrameTypeName | undefined {
  return NAME_BY_BYTE.get(byte);
}

/** Frames that belong to the connection and must carry stream id 0. */
const CONNECTION_FRAMES: ReadonlySet<FrameTypeName> = new Set(['HELLO', 'HELLO_ACK', 'PING', 'PONG', 'CONTROL']);

export function isConnectionFrameType(type: FrameTypeName): boolean {
  return CONNECTION_FRAMES.has(type);
}
