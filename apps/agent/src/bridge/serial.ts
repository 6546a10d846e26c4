import { createRequire } from 'node:module';
import path from 'node:path';
import type { Duplex } from 'node:stream';

import type { SerialPort as SerialPortClass } from 'serialport';

import type { LinkDescriptor } from '@payorch/tunnel';

export type SerialLink = Extract<LinkDescriptor, { kind: 'serial' }>;

let loaded: typeof SerialPortClass | undefined;

/** True inside a Node single executable application (SEA). */
export function isSingleExecutable(): boolean {
  // node:sea exists from Node 20.12 (getBuiltinModule from 20.16); older runtimes are never a SEA build of ours.
  const sea = process.getBuiltinModule?.('node:sea') as { isSea(): boolean } | undefined;
  return sea?.isSea() ?? false;
}

/**
 * `serialport` is a native module (a `.node` binding per platform), so it cannot live inside the
 * bundle or the single executable: it is loaded on first use, from `node_modules` as usual, or, in
 * the single executable, from `node_modules/serialport` beside the executable (a SEA's own `require`
 * only knows Node's built-in modules). Without it, TCP terminals work and serial links fail with
 * this error.
 */
export function loadSerialPort(): typeof SerialPortClass {
  if (loaded) return loaded;
  const sea = isSingleExecutable();
  const load = sea ? createRequire(path.join(path.dirname(process.execPath), 'payorch-agent.cjs')) : require;
  try {
    loaded = (load('serialport') as { SerialPort: typeof SerialPortClass }).SerialPort;
    return loaded;
  } catch (error) {
    const where = sea ? `${path.join(path.dirname(process.execPath), 'node_modules', 'serialport')}` : 'node_modules/serialport';
    throw new Error(`serial support is not installed (${where} missing or not built for this platform: ${(error as Error).message.split('\n')[0]})`, {
      cause: error,
    });
  }
}

/** A port opened by loadSerialPort() (tests substitute other Duplexes, which are just destroyed). */
export function isSerialPort(port: Duplex): port is SerialPortClass {
  return loaded !== undefined && port instanceof loaded;
}

/** Opens a serial link with the descriptor's line settings. */
export function openSerialPort(link: SerialLink): Promise<SerialPortClass> {
  return new Promise((resolve, reject) => {
    let SerialPort: typeof SerialPortClass;
    try {
      SerialPort = loadSerialPort();
    } catch (error) {
      return reject(error as Error);
    }
    const port: SerialPortClass = new SerialPort(
      {
        path: link.path,
        baudRate: link.baudRate,
        dataBits: link.dataBits ?? 8,
        stopBits: link.stopBits ?? 1,
        parity: link.parity ?? 'none',
        rtscts: link.rtscts ?? false,
        autoOpen: true,
      },
      (error) => (error ? reject(error) : resolve(port)),
    );
  });
}
