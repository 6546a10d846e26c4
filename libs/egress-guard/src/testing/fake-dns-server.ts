import { createSocket, type Socket } from 'node:dgram';

import { classifyAddress, parseAddressLiteral } from '../address';

/**
 * What the fake server does for a name: answer A and/or AAAA records (a type it has none of is answered NOERROR with
 * no records, NODATA), say the name does not exist (NXDOMAIN), fail (SERVFAIL / REFUSED), or never answer (`silent`,
 * a DNS server that is down or drops the query). Names it was not told about are NXDOMAIN. A record can also leave
 * one type unanswered (`silent: ['AAAA']`, a server that drops AAAA questions), or hold its questions until the test
 * calls `release(name)` (a slow server).
 */
export type FakeDnsRecord =
  | {
      readonly a?: readonly string[];
      readonly aaaa?: readonly string[];
      readonly silent?: readonly ('A' | 'AAAA')[];
      readonly hold?: boolean;
    }
  | 'nxdomain'
  | 'servfail'
  | 'refused'
  | 'silent';

export interface FakeDnsQuery {
  readonly name: string;
  readonly type: 'A' | 'AAAA' | number;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const RCODE = { noerror: 0, servfail: 2, nxdomain: 3, refused: 5 } as const;

/**
 * A DNS server on 127.0.0.1 (UDP) for tests: point a c-ares resolver at `server.address` (`127.0.0.1:<port>`). It
 * answers only special-purpose addresses (loopback, private, documentation…): a test never learns a public address from
 * it, so nothing a test resolves can make it dial out of the machine.
 */
export class FakeDnsServer {
  /** Every question received, in order (a name asked for A and AAAA appears twice). */
  readonly queries: FakeDnsQuery[] = [];
  /** Questions of `hold` names not answered yet. */
  private readonly held: { name: string; message: Buffer; host: string; port: number }[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly zone: Map<string, FakeDnsRecord>,
    readonly address: string,
  ) {}

  static async start(zone: Readonly<Record<string, FakeDnsRecord>>): Promise<FakeDnsServer> {
    const records = new Map<string, FakeDnsRecord>();
    for (const [name, record] of Object.entries(zone)) {
      if (typeof record === 'object') {
        for (const address of [...(record.a ?? []), ...(record.aaaa ?? [])]) {
          const parsed = parseAddressLiteral(address);
          if (!parsed || classifyAddress(parsed) === null) throw new Error(`fake DNS: ${name} → ${address} is not a special-purpose address`);
        }
      }
      records.set(name.toLowerCase(), record);
    }
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const server = new FakeDnsServer(socket, records, `127.0.0.1:${socket.address().port}`);
    socket.on('message', (message, from) => server.answer(message, from.address, from.port));
    return server;
  }

  /** Questions received for `name` (any type). */
  queriesFor(name: string): FakeDnsQuery[] {
    return this.queries.filter((q) => q.name === name.toLowerCase());
  }

  /** Answers the held questions for `name`; returns how many. */
  release(name: string): number {
    const questions = this.held.filter((h) => h.name === name.toLowerCase());
    for (const h of questions) {
      this.held.splice(this.held.indexOf(h), 1);
      this.reply(h.message, h.host, h.port);
    }
    return questions.length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(message: Buffer, host: string, port: number): void {
    const question = parseQuestion(message);
    if (!question) return;
    const typeName = question.type === TYPE_A ? 'A' : question.type === TYPE_AAAA ? 'AAAA' : question.type;
    this.queries.push({ name: question.name, type: typeName });
    const record = this.zone.get(question.name) ?? 'nxdomain';
    if (record === 'silent') return;
    if (typeof record === 'object' && typeof typeName === 'string' && record.silent?.includes(typeName)) return;
    if (typeof record === 'object' && record.hold) {
      this.held.push({ name: question.name, message, host, port });
      return;
    }
    this.reply(message, host, port);
  }

  private reply(message: Buffer, host: string, port: number): void {
    const question = parseQuestion(message)!;
    const record = this.zone.get(question.name) ?? 'nxdomain';
    if (record === 'silent') return;
    let rcode: number = RCODE.noerror;
    let answers: Buffer[] = [];
    if (record === 'nxdomain' || record === 'servfail' || record === 'refused') rcode = RCODE[record];
    else if (question.type === TYPE_A) answers = (record.a ?? []).map((a) => resourceRecord(TYPE_A, ipv4Bytes(a)));
    else if (question.type === TYPE_AAAA) answers = (record.aaaa ?? []).map((a) => resourceRecord(TYPE_AAAA, ipv6Bytes(a)));
    const header = Buffer.alloc(12);
    message.copy(header, 0, 0, 2); // id
    const rd = message[2]! & 0x01;
    header[2] = 0x80 | 0x04 | rd; // QR, AA, RD as asked
    header[3] = 0x80 | rcode; // RA, RCODE
    header.writeUInt16BE(1, 4); // QDCOUNT
    header.writeUInt16BE(answers.length, 6); // ANCOUNT
    this.socket.send(Buffer.concat([header, question.bytes, ...answers]), port, host);
  }
}

/** The first question of a query (RFC 1035 §4.1.2): its name, type and the bytes to echo back. */
function parseQuestion(message: Buffer): { name: string; type: number; bytes: Buffer } | null {
  if (message.length < 12 || message.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let offset = 12;
  while (offset < message.length) {
    const length = message[offset]!;
    if (length === 0) break;
    if (length > 63) return null; // no compression in a question we send ourselves
    labels.push(message.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  const end = offset + 1 + 4;
  if (end > message.length) return null;
  return { name: labels.join('.').toLowerCase(), type: message.readUInt16BE(offset + 1), bytes: message.subarray(12, end) };
}

/** An answer record for the question's name (a pointer to offset 12), class IN, TTL 60. */
function resourceRecord(type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}

function ipv4Bytes(address: string): Buffer {
  const parsed = parseAddressLiteral(address);
  if (parsed?.kind() !== 'ipv4') throw new Error(`fake DNS: ${address} is not IPv4`);
  return Buffer.from(parsed.toByteArray());
}

function ipv6Bytes(address: string): Buffer {
  const parsed = parseAddressLiteral(address);
  if (parsed?.kind() !== 'ipv6') throw new Error(`fake DNS: ${address} is not IPv6`);
  return Buffer.from(parsed.toByteArray());
}

/** A loopback UDP address where nothing listens (a DNS server that is down: the kernel answers "port unreachable"). */
export async function closedDnsAddress(): Promise<string> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return `127.0.0.1:${port}`;
}
