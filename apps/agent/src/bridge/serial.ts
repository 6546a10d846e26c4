import type { Duplex } from 'node:stream';

import type { SerialPort as SerialPortClass } from 'serialport';

import type { LinkDescriptor } from '@payorch/tunnel';

import { nativeModuleLocation, requireNative } from '../native/native-modules';

export type SerialLink = Extract<LinkDescriptor, { kind: 'serial' }>;

let loaded: typeof SerialPortClass | undefined;

/**
 * `serialport` is a native module (a `.node` binding per platform), so it cannot live inside the
 * bundle or the single executable: it is loaded on first use, from `node_modules` as usual, or, in
 * the single executable, from `node_modules/serialport` beside the executable (a SEA's own `require`
 * only knows Node's built-in modules). Without it, TCP terminals work and serial links fail with
 * this error.
 */
export function loadSerialPort(): typeof SerialPortClass {
  if (loaded) return loaded;
  try {
    loaded = requireNative<{ SerialPort: typeof SerialPortClass }>('serialport').SerialPort;
    return loaded;
  } catch (error) {
    const where = nativeModuleLocation('serialport');
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
