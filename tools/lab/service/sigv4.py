"""AWS Signature Version 4 as S3 checks it, server side: canonical request, string to sign, keys."""
import hashlib
import hmac
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"


class AuthError(Exception):
    """An S3 error code (its status comes from s3front's table), a message, extra XML fields."""

    def __init__(self, code, message=None, **extra):
        super().__init__(message or code)
        self.code, self.message, self.extra = code, message, extra


def quote(s):
    return urllib.parse.quote(s, safe="-_.~")


def canonical_uri(raw_path):
    """S3 signs the path URI-encoded once from its decoded form ('/' kept, no normalisation)."""
    return urllib.parse.quote(urllib.parse.unquote(raw_path), safe="/-_.~") or "/"


def query_pairs(raw_query):
    """Decoded (name, value) pairs of a raw query string, in order; `a` without '=' is ('a', '')."""
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        pairs.append((urllib.parse.unquote(name), urllib.parse.unquote(value)))
    return pairs


def canonical_query(pairs, skip=()):
    encoded = sorted((quote(n), quote(v)) for n, v in pairs if n not in skip)
    return "&".join(f"{n}={v}" for n, v in encoded)


def canonical_headers(headers, signed):
    """headers: http.server's message (or a dict); signed: the lowercase names, in order."""
    lines = []
    for name in signed:
        values = headers.get_all(name) if hasattr(headers, "get_all") else [headers.get(name)]
        if not values or values == [None]:
            raise AuthError("AccessDenied", "There were headers present in the request which were "
                            f"not signed or a signed header is missing: {name}")
        lines.append(name + ":" + ",".join(" ".join(v.split()) for v in values) + "\n")
    return "".join(lines)


def canonical_request(method, raw_path, pairs, headers, signed, payload_hash, skip_query=()):
    return "\n".join([method, canonical_uri(raw_path), canonical_query(pairs, skip_query),
                      canonical_headers(headers, signed), ";".join(signed), payload_hash])


def string_to_sign(amz_date, scope, creq):
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def signature(secret, date, region, service, sts):
    key = signing_key(secret, date, region, service)
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def parse_authorization(value):
    """(credential, signed headers, signature) of `AWS4-HMAC-SHA256 Credential=AK/date/region/s3/
    aws4_request, SignedHeaders=a;b, Signature=hex`."""
    algo, _, rest = value.strip().partition(" ")
    if algo == "AWS":
        raise AuthError("InvalidRequest", "The authorization mechanism you have provided is not "
                        "supported. Please use AWS4-HMAC-SHA256.")
    if algo != ALGORITHM:
        raise AuthError("AuthorizationHeaderMalformed", f"Unsupported algorithm {algo!r}.")
    fields = {}
    for part in rest.split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        return fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    except KeyError as e:
        raise AuthError("AuthorizationHeaderMalformed", "The authorization header is malformed; "
                        f"missing {e.args[0]}.") from None


def parse_credential(cred, amz_date, region):
    """(access key, date, scope) from `AK/YYYYMMDD/region/s3/aws4_request`, checked as S3 does."""
    parts = cred.split("/")
    bad = "The authorization header is malformed; "
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthError("AuthorizationHeaderMalformed", bad + "the Credential is mal-formed; "
                        'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    ak, date, reg, service = parts[:4]
    if date != amz_date[:8]:
        raise AuthError("AuthorizationHeaderMalformed", bad + "Invalid credential date. Date is "
                        "not the same as X-Amz-Date.")
    if reg != region:
        raise AuthError("AuthorizationHeaderMalformed", bad + f"the region '{reg}' is wrong; "
                        f"expecting '{region}'", Region=region)
    if service != "s3":
        raise AuthError("AuthorizationHeaderMalformed", bad + f'incorrect service "{service}". '
                        'This endpoint belongs to "s3".')
    return ak, date, "/".join(parts[1:])
