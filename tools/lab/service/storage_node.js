// Request check of the lab's storage nodes (nginx njs): only a valid X-SP-Node-Auth passes.
//
// X-SP-Node-Auth: <key_id>:<expires_unix>:<hex hmac_sha256(key, METHOD "\n" PATH "\n" expires)>
//   PATH    the request path exactly as sent (percent-encoded, without the query string)
//   key     the bytes of secret_hex from the keys file line `key_id secret_hex` ($sp_keys_file)
//   expires in the future and at most 15 minutes ahead
// verify() gives "ok" or why not (the server answers 403 and logs it); keyId() gives the key id.

var fs = require('fs');
var crypto = require('crypto');

var MAX_AHEAD = 900;

function parse(r) {
    var h = r.headersIn['X-SP-Node-Auth'];
    if (!h) {
        return null;
    }
    var p = h.split(':');
    return p.length == 3 ? {id: p[0], expires: p[1], mac: p[2].toLowerCase()} : {};
}

function secretFor(r, id) {
    var lines = fs.readFileSync(r.variables.sp_keys_file, 'utf8').split('\n');
    for (var i = 0; i < lines.length; i++) {
        var f = lines[i].trim().split(/\s+/);
        if (f.length == 2 && f[0] == id) {
            return f[1];
        }
    }
    return null;
}

function verify(r) {
    var c = parse(r);
    if (c === null) {
        return 'missing';
    }
    if (!c.id || !/^[0-9]{1,12}$/.test(c.expires) || !/^[0-9a-f]{64}$/.test(c.mac)) {
        return 'malformed';
    }
    var now = Math.floor(Date.now() / 1000);
    var expires = parseInt(c.expires, 10);
    if (expires <= now) {
        return 'expired';
    }
    if (expires - now > MAX_AHEAD) {
        return 'too-far-ahead';
    }
    var secret = secretFor(r, c.id);
    if (secret === null) {
        return 'unknown-key';
    }
    var path = r.variables.request_uri.split('?')[0];
    var want = crypto.createHmac('sha256', Buffer.from(secret, 'hex'))
        .update(r.method + '\n' + path + '\n' + c.expires).digest('hex');
    return want === c.mac ? 'ok' : 'bad-signature';
}

function keyId(r) {
    var c = parse(r);
    return c && c.id ? c.id : '-';
}

export default {verify, keyId};
