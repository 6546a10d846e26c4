import { JOINPROTO_VECTORS as vectors } from '@payorch/joinproto/testing';
import { adapter } from './joinproto';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').toUpperCase();
const fromHex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

describe('joinproto CLI adapter', () => {
  it('decodes every spec vector to its tags, in one stream', () => {
    const stream = fromHex(vectors.map((v) => v.frame_hex).join(''));
    const entries = adapter.decode(stream) as Array<{ tags: Array<{ tag: string }>; messages: Record<string, unknown> }>;
    expect(entries).toHaveLength(vectors.length);
    entries.forEach((entry, i) => {
      expect(entry.tags.map((t) => t.tag)).toEqual(vectors[i].tags.map(([tag]) => tag));
      expect(entry.messages[vectors[i].direction]).toHaveProperty('type');
    });
  });

  it('explains a response code and reports garbage with its error code and wire reply', () => {
    const approved = vectors.find((v) => v.section.startsWith('5.1.4'));
    const entries = adapter.decode(fromHex(`AABB${approved?.frame_hex}`)) as Array<Record<string, unknown>>;
    expect(entries[0]).toEqual({ offset: 0, hex: 'AABB', error: { code: 'NO_STX', message: 'bytes before STX', reply: 'other err' } });
    expect(entries[1]).toMatchObject({ offset: 2, response: { code: '000', meaning: 'Successful transaction', category: 'approved' } });
  });

  it('encodes a typed message, a raw tag list and its own decode output to the spec bytes', () => {
    const logs = vectors.find((v) => v.section.startsWith('4.8.2'));
    expect(hex(adapter.encode({ type: 'EchoRequest', id: '931154' }))).toBe(vectors[2].frame_hex);
    expect(
      hex(
        adapter.encode({
          tags: [
            { tag: 'DF16', value: 'XX' },
            { tag: 'DF1A', value: 'other err' },
          ],
        }),
      ),
    ).toBe(vectors[0].frame_hex);
    const decoded = adapter.decode(fromHex(logs?.frame_hex ?? '')) as Array<{ tags: unknown[] }>;
    expect(hex(adapter.encode({ tags: decoded[0].tags }))).toBe(logs?.frame_hex);
  });

  it('throws a typed error on invalid input', () => {
    expect(() => adapter.encode({ type: 'PurchaseRequest', id: '1', amount: 1 })).toThrow(expect.objectContaining({ code: 'BAD_TAG_LENGTH' }));
    expect(() => adapter.encode([])).toThrow(expect.objectContaining({ code: 'INVALID_MESSAGE' }));
  });
});
