/**
 * TEST-ONLY merchant RSA-1024 key pair. Generated once with
 * `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024` for the signature known-answer
 * tests and the sandbox's default signature check. It protects nothing: never configure it for a
 * real Assist merchant.
 */
export const TEST_MERCHANT_PRIVATE_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAL5k1mfsoSyu59cW
18QunAs3wuTq3QZu6opCxW7SvkHmJaoHw9fEnAiDFBUH3sojaB7YGIwvrYzE500O
ecnmOebHB4A35fP9FGVLpT09Oda6RkPDi28DTpUV03gvqxKL+oheGY3dkqrHCGrX
IykE4/RWO/TXBkm6u0x2N1EwQ5QnAgMBAAECgYEAjZoltGlTfg4fs+LzWp9nwxgX
xXXAKRa5LVd3y3LFufFXtdvMll9NxS7n8rRFyIUI3VfO+gRDyVxwwuivP7ARAv/P
1m3lOEyCWDxnJPaolQFd2iroXhGWHgfPyESaROGeN2cOSocw3yN5BnsHPnJho1m4
UdBslVtSIXgkNiT3L+ECQQDolmiczi62yHaT/J/Pz/W0qzIN6RaPfXVc2Fm1BGoj
Pa4K258j2Gd89LIjIUz0IK0QHaIPLfm/+N3dBZ+vBy//AkEA0Y8iGdxF9sv50Qee
epaeV0hXAJcG+zy4qlbEv9xmht5l7lQuyzsbUZjlJYHuQBg9Dn1OOnc2QUm5HUmG
ruQb2QJAZDq85iXr95S3lNpevB0wEyVbMqdps3grJVGOhvVaD8m6wK8YC0hsgGqq
gX0OPn3+Vl2Owt/bKqFCasbLo4+DXQJAeUin6eOssnu3aB1KwZRurAF4KSU/qySn
lB6H3KsIw8HvqJIcSw84bm9ZH+4lH/9nRv2Kyxe31O2AL80gIBRxcQJAEW5uTdTj
miiJMrDBjL7qck78p5uoWUz8VAAGAiDyQ+KAtlExWhW2Gl8VFwNTMP5IdAdk+JZ7
SDO6eFCC8MWkuA==
-----END PRIVATE KEY-----
`.trim();

export const TEST_MERCHANT_PUBLIC_KEY_PEM = `-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+ZNZn7KEsrufXFtfELpwLN8Lk
6t0GbuqKQsVu0r5B5iWqB8PXxJwIgxQVB97KI2ge2BiML62MxOdNDnnJ5jnmxweA
N+Xz/RRlS6U9PTnWukZDw4tvA06VFdN4L6sSi/qIXhmN3ZKqxwhq1yMpBOP0Vjv0
1wZJurtMdjdRMEOUJwIDAQAB
-----END PUBLIC KEY-----
`.trim();
