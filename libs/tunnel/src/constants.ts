/**
 * Wire constants of the payorch tunnel protocol (docs/tunnel.md, "Frame format").
 *
 * Two version numbers exist on purpose:
 * - the *frame format version* (low nibble of byte 0) describes the 12-byte header layout and can
 *   never be negotiated, because it has to be understood before anything else is read;
 * - the *protocol version* (u16, negotiated by HELLO / HELLO_ACK) describes frame semantics,
 *   payload shapes and control messages.
 */

/** High nibble of byte 0 of every frame. */
export const FRAME_MAGIC_NIBBLE = 0xa;
/** Low nibble of byte 0: the header layout described in docs/tunnel.md. */
export const FRAME_FORMAT_VERSION = 1;
/** Byte 0 of every frame in format 1: `0xA1`. */
export const FRAME_LEAD_BYTE = (FRAME_MAGIC_NIBBLE << 4) | FRAME_FORMAT_VERSION;
/** magic/version (1) + type (1) + flags (2) + stream id (4) + payload length (4). */
export const FRAME_HEADER_BYTES = 12;

/**
 * Default bound of a whole frame (header + payload): one WebSocket message. 64 KiB less 512 bytes, so that the
 * WebSocket message (the frame and ws's header of at most 14 bytes) fits one 64 KiB socket read (libuv's read
 * buffer) and one segment of loopback's 64 KiB MTU: with frames of exactly 64 KiB every message straddled two
 * reads, ws reassembled each one with a copy, and the kernel sent a runt segment per frame (relay bulk on
 * loopback, bench/tunnel/roundtrip: 1.7 → 1.2–1.4 ms of CPU per MiB). Over a WAN path a message spans many
 * segments whatever its size, so nothing is lost there.
 */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 - 512;
/** The largest WebSocket header of a frame's message: 2 bytes, 8 of extended length, 4 of client mask. */
export const MAX_WEBSOCKET_HEADER_BYTES = 14;
/** Smallest `maxFrameBytes` a peer may announce: a HELLO must always fit. */
export const MIN_MAX_FRAME_BYTES = 4 * 1024;
/** Largest `maxFrameBytes` a peer may announce (16 MiB): keeps memory per frame bounded. */
export const MAX_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Stream ids are u32; 0 is the connection itself. */
export const CONNECTION_STREAM_ID = 0;
export const MAX_STREAM_ID = 0xffff_ffff;
/** Flow-control windows and credits never exceed 2^31 - 1 (as in HTTP/2). */
export const MAX_WINDOW = 0x7fff_ffff;

/** Protocol versions this library implements. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];

/** Limits on HELLO fields and on human-readable reasons. */
export const MAX_HELLO_VERSIONS = 16;
export const MAX_CAPABILITIES = 16;
export const MAX_CAPABILITY_BYTES = 32;
export const MAX_SOFTWARE_BYTES = 64;
export const MAX_REASON_BYTES = 512;
