export { connectTcp, duplexTransport, type ByteTransport, type DuplexTransportOptions, type TcpConnectOptions } from './byte-transport';
