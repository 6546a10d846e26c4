import { readFileSync } from 'node:fs';

import { Command, InvalidArgumentError } from 'commander';

import type { ProtocolCliAdapter } from './adapter';
import { ADAPTERS } from './registry';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Buffer;
}

const HEX = /^[0-9a-fA-F\s:]*$/;

/**
 * Input: a hex string on the command line, `-` for standard input, or a file path.
 * A file or stdin that is all hex digits (spaces/colons allowed) is read as hex; otherwise as raw bytes.
 */
export function readInput(source: string, io: CliIo): Buffer {
  let raw: Buffer;
  if (source === '-') raw = io.readStdin();
  else if (HEX.test(source) && source.replace(/[\s:]/g, '').length > 0) return hexToBytes(source);
  else raw = readFileSync(source);
  const text = raw.toString('latin1').trim();
  return text.length > 0 && HEX.test(text) ? hexToBytes(text) : raw;
}

function hexToBytes(text: string): Buffer {
  const clean = text.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0) throw new InvalidArgumentError('hex input has an odd number of digits');
  return Buffer.from(clean, 'hex');
}

function adapterFor(name: string): ProtocolCliAdapter {
  const adapter = ADAPTERS.get(name);
  if (!adapter) throw new InvalidArgumentError(`unknown protocol "${name}"; known: ${[...ADAPTERS.keys()].join(', ')}`);
  return adapter;
}

/** `payorch-proto decode|encode --protocol <name> <input>`; returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code = 0;
  const program = new Command('payorch-proto')
    .description('Decode and build frames of the terminal protocols payorch speaks (for reading captures)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  program.addHelpText('after', `\nProtocols:\n${[...ADAPTERS.values()].map((a) => `  ${a.name.padEnd(10)} ${a.description}`).join('\n')}\n`);

  program
    .command('decode')
    .description('print every frame (and every garbage run) of a capture as JSON')
    .requiredOption('-p, --protocol <name>', 'joinproto | jpay | ssi-ecr', adapterFor)
    .argument('<input>', 'hex string, file path, or - for stdin')
    .action((input: string, opts: { protocol: ProtocolCliAdapter }) => {
      const entries = opts.protocol.decode(readInput(input, io));
      io.stdout(`${JSON.stringify(entries, null, 2)}\n`);
      if (entries.some((e) => typeof e === 'object' && e !== null && 'error' in e)) code = 3;
    });

  program
    .command('encode')
    .description('build one frame from JSON (the shape decode prints) and print it as hex')
    .requiredOption('-p, --protocol <name>', 'joinproto | jpay | ssi-ecr', adapterFor)
    .argument('<json>', 'JSON text, file path, or - for stdin')
    .action((input: string, opts: { protocol: ProtocolCliAdapter }) => {
      const text = input === '-' ? io.readStdin().toString('utf8') : input.trimStart().startsWith('{') ? input : readFileSync(input, 'utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        throw new InvalidArgumentError(`not valid JSON: ${(error as Error).message}`);
      }
      io.stdout(`${Buffer.from(opts.protocol.encode(json)).toString('hex')}\n`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 2;
    io.stderr(`payorch-proto: ${e.message}\n`);
    return 2;
  }
}
