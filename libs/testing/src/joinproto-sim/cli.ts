/**
 * Joinproto terminal and processing-host simulators as a CLI (a test tool; prints to the console).
 *   npx tsx libs/testing/src/joinproto-sim/cli.ts --help
 */
import { type CommandName, COMMANDS } from '@payorch/joinproto';
import { Command, InvalidArgumentError } from 'commander';

import { ProcessingHostSimulator } from './processing-host';
import { JoinprotoTerminalSimulator } from './terminal';

function hostPort(value: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  if (!match) throw new InvalidArgumentError('expected host:port');
  return { host: match[1], port: Number(match[2]) };
}

function integer(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return parsed;
}

const program = new Command('joinproto-sim').description('Joinproto POS terminal and processing-host simulators (test tools)');

program
  .command('terminal')
  .description('run a terminal: listens for the till (default) or dials it; outcomes by amount, see README.md')
  .option('--listen <host:port>', 'wait for the till on this address', hostPort)
  .option('--connect <host:port>', 'dial a till listening on this address', hostPort)
  .option('--offline <host:port>', 'no internet: reach this processing host through the till (91–94)')
  .option('--card-check', 'ask the till to check the card (02) before a purchase', false)
  .option('--card-pan <pan>', 'the card presented (only its masked form is sent)', '5449661234562078')
  .option('--card-timeout-ms <ms>', 'wait of the card-timeout scenario', integer, 30_000)
  .option('--receive-chunk <bytes>', 'DF25 of each 93 receive', integer, 256)
  .option('--close-day-mismatch', 'close day reports 915 (totals differ)', false)
  .option('--drop <command>', 'fault: never send the answer to this DF00 (e.g. 01); 95 still repeats it')
  .action(async (options) => {
    const sim = new JoinprotoTerminalSimulator({
      mode: options.offline ? 'offline' : 'online',
      processingHost: options.offline,
      cardPan: options.cardPan,
      cardCheckBeforePurchase: options.cardCheck,
      cardTimeoutMs: options.cardTimeoutMs,
      receiveChunkBytes: options.receiveChunk,
      closeDayMismatch: options.closeDayMismatch,
      dropResponse: options.drop ? (request) => commandCode(request.type) === options.drop : undefined,
    });
    if (options.connect) {
      await sim.connect(options.connect.port, options.connect.host);
      console.log(`terminal connected to till at ${options.connect.host}:${options.connect.port}`);
    } else {
      const target = options.listen ?? { host: '127.0.0.1', port: 0 };
      const bound = await sim.listen(target.port, target.host);
      console.log(`terminal listening on ${bound.host}:${bound.port}`);
    }
    await sim.ready();
    console.log('greeting echo answered; waiting for commands (Ctrl+C to stop)');
  });

program
  .command('host')
  .description('run the processing-host simulator reached by an offline terminal')
  .option('--listen <host:port>', 'listen address', hostPort)
  .option('--padding <bytes>', 'filler added to every answer (forces many 93 chunks)', integer, 0)
  .action(async (options) => {
    const host = new ProcessingHostSimulator({ answerPaddingBytes: options.padding });
    const target = options.listen ?? { host: '127.0.0.1', port: 0 };
    const bound = await host.listen(target.port, target.host);
    console.log(`processing host listening on ${bound.host}:${bound.port}`);
  });

function commandCode(type: string): string | undefined {
  const name = type.replace(/Request$/, '') as CommandName;
  return COMMANDS[name]?.code;
}

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
