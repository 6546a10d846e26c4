import { JOINPROTO_VECTORS as vectors } from '@payorch/joinproto/testing';

import { runCli } from './run';

async function cli(args: string[], stdin = '') {
  let out = '';
  let err = '';
  const code = await runCli(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), readStdin: () => Buffer.from(stdin) });
  return { code, out, err };
}

describe('payorch-proto', () => {
  it('decodes every Joinproto vector to its tags', async () => {
    expect(vectors.length).toBe(86);
    for (const v of vectors) {
      const { code, out } = await cli(['decode', '--protocol', 'joinproto', v.frame_hex]);
      expect(code).toBe(0);
      const [entry] = JSON.parse(out) as { tags: { tag: string }[] }[];
      expect(entry!.tags.map((t) => t.tag)).toEqual(v.tags.map(([tag]) => tag));
    }
  });

  it('reads hex from stdin, reports garbage with exit code 3', async () => {
    const { code, out } = await cli(['decode', '-p', 'joinproto', '-'], 'ff ff');
    expect(code).toBe(3);
    expect(JSON.parse(out)[0].error.code).toBeDefined();
  });

  it('round-trips encode → decode for SSI ECR', async () => {
    const enc = await cli(['encode', '-p', 'ssi-ecr', '{"method":"PingDevice"}']);
    expect(enc.code).toBe(0);
    const dec = await cli(['decode', '-p', 'ssi-ecr', enc.out.trim()]);
    expect(dec.code).toBe(0);
    expect(dec.out).toContain('PingDevice');
  });

  it('names the known protocols on a bad --protocol', async () => {
    const { code, err } = await cli(['decode', '-p', 'nope', '00']);
    expect(code).toBe(1);
    expect(err).toContain('known: joinproto, jpay, ssi-ecr');
  });
});
