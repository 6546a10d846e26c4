/** The byte pipe a TillSession talks over (a TCP socket, a serial port, a tunnel stream): see @payorch/byte-transport. */
export { duplexTransport, type ByteTransport } from '@payorch/byte-transport';
