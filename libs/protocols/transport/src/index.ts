export {
  connectSocket,
  connectTcp,
  duplexTransport,
  type ByteTransport,
  type DuplexTransportOptions,
  type SocketConnectOptions,
  type TcpConnectOptions,
} from './byte-transport';
