/// A self-signed P-256 certificate and its key for the in-memory TLS harnesses (test material
/// only: made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
/// -days 36500 -subj /CN=fuzz.faststreams.test`).
public enum TLSFixtures {
    public static let certificatePEM = """
-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUOlAy5wiQYvPjPT5x+tgQB8+S1KEwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVZnV6ei5mYXN0c3RyZWFtcy50ZXN0MCAXDTI2MTIwMjE3NTYw
MVoYDzIxMjYxMTA4MTc1NjAxWjAgMR4wHAYDVQQDDBVmdXp6LmZhc3RzdHJlYW1z
LnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARLILQsbe0jQKLtaRJ6g97/
vgIzSyRjhHJkbRp7kZu58B0A+rIznfxw2/lCP1fXYhRCz1GppE/dQgQZB/jPGE7C
o1MwUTAdBgNVHQ4EFgQUxOYOtOLO5lQZbuxAIRgAAI3sAkowHwYDVR0jBBgwFoAU
xOYOtOLO5lQZbuxAIRgAAI3sAkowDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiAdHW8lELjCi5f1jtD5Prgje4gzj6cksOK3WKutQxZFLAIhAK0OpXY8
NoDiB9bAHLBGRSKW34ET6kOkonbjKZb7G47c
-----END CERTIFICATE-----
"""

    public static let privateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKIwTm3T8hLHrINsP
DY2WHyYVPq+cm5Xc3qK/U4NUoUWhRANCAARLILQsbe0jQKLtaRJ6g97/vgIzSyRj
hHJkbRp7kZu58B0A+rIznfxw2/lCP1fXYhRCz1GppE/dQgQZB/jPGE7C
-----END PRIVATE KEY-----
"""
}
