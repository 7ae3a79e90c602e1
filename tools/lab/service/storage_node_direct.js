// A lab storage node answering the node manager's direct requests as the S3 service does (njs).
//
// The node manager (shortpath, key id $sp_direct_key = `nodemgr`) sends a VM's S3 request
// straight to a storage node: target svccommon.object_path(bucket, key), the client's headers,
// its credential and `Connection: close`. The VM must not be able to tell the answer from the
// service's (HAProxy -> s3front.py), so the node answers as s3front does.
//
//   route()    js_set $sp_route: "dav" (other keys: front ends, the node agent; WebDAV as before),
//              "direct" (the node manager's requests on /objects/), "none" (its requests
//              elsewhere: 404), "refused" (no valid credential: 403)
//   handle()   js_content of a direct request. PUT, DELETE and the rest go to the node agent
//              (node_agent.py: s3front's code). A GET or HEAD is answered here when the
//              object's sidecar <data>/meta/<bucket>/<name> (the storage manager's metadata,
//              written with every replica: svccommon.meta_path) agrees with its file (size;
//              mtime = Last-Modified): conditions and Range are decided exactly as
//              s3front.conditions and byte_range decide them; 304, 412 and 416 are answered
//              here, a 200 or 206 is nginx serving the file (sendfile; nginx's range filter cuts
//              the range found satisfiable here). Otherwise the node agent answers: no sidecar
//              (missing key or bucket, an object written before sidecars, or not on this node),
//              sidecar and file disagree (being rewritten), a body, a query, If-Range (nginx's
//              range filter would honour it, s3front does not), numbers too big for a double.
//   headers()  js_header_filter of the served file: the service's headers
//   agentHeaders() js_header_filter of the node agent's answers
//   status()   js_set $sp_status: $status for the access log (the 299 below would be there)
//
// The file and the node agent's answer come through `error_page 418|419|420 =299 ...`: nginx's
// not-modified filter only looks at 200 answers and would judge If-Match, If-None-Match and
// If-Unmodified-Since again, by its own ideas of ETag and mtime; it lets a 299 pass, which the
// header filters here (after it) turn back into the real status (the range filter, after them,
// makes a 206). A named location keeps the method and the body (nginx reads the body before
// handle(), answering `Expect: 100-continue`). $sp_direct (the access log's direct=) says how a
// direct request was answered: file, njs (304/412/416 here), agent.

var fs = require('fs');

var OBJECT_PATH = new RegExp('^/objects/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/'
                             + '((?:%25|[A-Za-z0-9_~-])(?:%25|[A-Za-z0-9_.~-])*)$');
var RANGE = /^\s*bytes=(\d*)-(\d*)\s*$/;
var MAX_DIGITS = 15; // beyond this a Range number is left to the node agent (Python's big ints)

var ERRORS = {
    InvalidRange: [416, 'The requested range is not satisfiable'],
    PreconditionFailed: [412, 'At least one of the pre-conditions you specified did not hold']
};

function route(r) {
    var v = r.variables;
    if (v.sp_auth !== 'ok') {
        return 'refused';
    }
    if (v.sp_key_id !== v.sp_direct_key) {
        return 'dav';
    }
    return v.request_uri.indexOf('/objects/') === 0 ? 'direct' : 'none';
}

function toAgent(r) {
    r.variables.sp_direct = 'agent';
    r.return(420);
}

function hasBody(r) {
    var cl = r.headersIn['Content-Length'];
    return r.headersIn['Transfer-Encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

function handle(r) {
    var m = OBJECT_PATH.exec(r.variables.request_uri);
    if ((r.method !== 'GET' && r.method !== 'HEAD') || !m || hasBody(r)) {
        return toAgent(r);
    }
    var file = m[1] + '/' + m[2].replace(/%25/g, '%');
    var obj, st;
    try {
        obj = JSON.parse(fs.readFileSync(r.variables.sp_data + '/meta/' + file, 'utf8'));
        st = fs.statSync(r.variables.sp_data + '/objects/' + file);
    } catch (e) {
        return toAgent(r);
    }
    var mtime = Date.parse(obj.last_modified) / 1000;
    if (st.size !== obj.size || Math.floor(st.mtimeMs / 1000) !== mtime) {
        return toAgent(r);
    }
    var rid = r.variables.request_id.slice(0, 16).toUpperCase();
    var ctx = {
        resource: '/' + m[1] + '/' + obj.key,
        ids: [['x-amz-request-id', rid], ['x-amz-id-2', Buffer.from(rid).toString('base64')]]
    };

    var cond = conditions(r, obj.etag, mtime);
    if (cond === 304) {
        r.variables.sp_direct = 'njs';
        r.status = 304;
        setHeaders(r, ctx.ids.concat([['ETag', obj.etag],
                                      ['Last-Modified', new Date(mtime * 1000).toUTCString()]]));
        r.sendHeader();
        return r.finish();
    }
    if (cond !== null) {
        return sendError(r, ctx, 'PreconditionFailed', {Condition: cond});
    }
    var rng = byteRange(r, obj.size);
    if (rng === 'agent' || (rng !== null && r.headersIn['If-Range'] !== undefined)) {
        return toAgent(r);
    }
    if (rng === 'invalid') {
        return sendError(r, ctx, 'InvalidRange',
                         {RangeRequested: r.headersIn.Range, ActualObjectSize: obj.size},
                         [['Content-Range', 'bytes */' + obj.size]]);
    }
    // in s3front's order (Content-Type, Content-Length, Last-Modified and Content-Range have
    // their fixed places in nginx's answer)
    var h = ctx.ids.concat([['ETag', obj.etag], ['Accept-Ranges', 'bytes'],
                            ['Content-Type', obj.content_type]]);
    for (var name in obj.meta) {
        h.push([name, obj.meta[name]]);
    }
    r.variables.sp_headers = JSON.stringify(h);
    r.variables.sp_file = file;
    r.variables.sp_direct = 'file';
    r.return(rng === null ? 418 : 419);
}

function headers(r) {
    if (r.status !== 299) {
        return; // not the file (gone since handle() looked): nginx's own error page
    }
    r.status = 200;
    setHeaders(r, JSON.parse(r.variables.sp_headers));
}

function agentHeaders(r) {
    var st = Number(r.variables.upstream_status);
    if (r.status === 299 && st >= 100 && st <= 599) {
        r.status = st;
    }
}

function status(r) {
    var s = r.variables.status;
    return s === '299' ? String(r.status) : s;
}

function setHeaders(r, list) {
    for (var i = 0; i < list.length; i++) {
        r.headersOut[list[i][0]] = list[i][1];
    }
}

function el(name, value) {
    var s = String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    return '<' + name + '>' + s + '</' + name + '>';
}

// s3front.send_error_xml
function sendError(r, ctx, code, extra, headers) {
    var x = el('Code', code) + el('Message', ERRORS[code][1]) + el('Resource', ctx.resource)
        + el('RequestId', ctx.ids[0][1]);
    for (var k in extra) {
        x += el(k, extra[k]);
    }
    r.variables.sp_direct = 'njs';
    r.headersOut['Content-Type'] = 'application/xml';
    setHeaders(r, ctx.ids.concat(headers || []));
    r.return(ERRORS[code][0], '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + x + '</Error>');
}

// ---- s3front's conditions, byte_range and the Python they use, in njs -------------------------

// s3front.etag_matches
function etagMatches(header, etag) {
    var want = stripQuotes(etag);
    var tags = header.split(',');
    for (var i = 0; i < tags.length; i++) {
        var t = tags[i].trim();
        if (t.indexOf('W/') === 0) {
            t = t.slice(2);
        }
        t = stripQuotes(t);
        if (t === '*' || t === want) {
            return true;
        }
    }
    return false;
}

function stripQuotes(s) {
    return s.replace(/^"+/, '').replace(/"+$/, '');
}

// s3front.conditions: null to go on, 304, or the condition that failed (412)
function conditions(r, etag, mtime) {
    var h = r.headersIn;
    var t;
    if (h['If-Match'] !== undefined) {
        if (!etagMatches(h['If-Match'], etag)) {
            return 'If-Match';
        }
    } else if ((t = parseHttpDate(h['If-Unmodified-Since'])) !== null && mtime > t) {
        return 'If-Unmodified-Since';
    }
    if (h['If-None-Match'] !== undefined) {
        return etagMatches(h['If-None-Match'], etag) ? 304 : null;
    }
    if ((t = parseHttpDate(h['If-Modified-Since'])) !== null && mtime <= t) {
        return 304;
    }
    return null;
}

// s3front.byte_range: null (the whole object), [first, last], 'invalid' (416) or 'agent'
function byteRange(r, size) {
    var m = RANGE.exec(r.headersIn.Range || '');
    if (!m || !(m[1] || m[2])) {
        return null;
    }
    if (m[1].length > MAX_DIGITS || m[2].length > MAX_DIGITS) {
        return 'agent';
    }
    var a = m[1] ? parseInt(m[1], 10) : null;
    var b = m[2] ? parseInt(m[2], 10) : null;
    if (a !== null && b !== null && b < a) {
        return null;
    }
    var first, last;
    if (a !== null) {
        first = a;
        last = Math.min(b !== null ? b : size - 1, size - 1);
    } else {
        first = Math.max(size - b, 0);
        last = size - 1;
    }
    if (first >= size || (a === null && b === 0)) {
        return 'invalid';
    }
    return [first, last];
}

// s3front.parse_http_date: email.utils.parsedate_to_datetime(s).timestamp() or null (a date
// without a time zone is taken as UTC, which the lab's hosts are in)
var MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec',
              'january', 'february', 'march', 'april', 'may', 'june', 'july', 'august',
              'september', 'october', 'november', 'december'];
var DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
var ZONES = {UT: 0, UTC: 0, GMT: 0, Z: 0, AST: -400, ADT: -300, EST: -500, EDT: -400,
             CST: -600, CDT: -500, MST: -700, MDT: -600, PST: -800, PDT: -700};

function pyInt(s) { // Python's int(str) for what a date holds, else null
    var m = /^\s*([+-]?)(\d+(?:_\d+)*)\s*$/.exec(String(s));
    return m ? parseInt(m[1] + m[2].replace(/_/g, ''), 10) : null;
}

function parseHttpDate(s) { // email._parseaddr._parsedate_tz, then datetime(...).timestamp()
    if (!s) {
        return null;
    }
    var data = s.split(/\s+/).filter(function(x) { return x !== ''; });
    if (!data.length) {
        return null;
    }
    if (data[0].slice(-1) === ',' || DAYS.indexOf(data[0].toLowerCase()) >= 0) {
        data.shift();
    } else {
        var c = data[0].lastIndexOf(',');
        if (c >= 0) {
            data[0] = data[0].slice(c + 1);
        }
    }
    if (data.length === 3) { // RFC 850
        var stuff = data[0].split('-');
        if (stuff.length === 3) {
            data = stuff.concat(data.slice(1));
        }
    }
    if (data.length === 4) {
        var z = data[3];
        var i = z.indexOf('+');
        if (i === -1) {
            i = z.indexOf('-');
        }
        if (i > 0) {
            data = data.slice(0, 3).concat([z.slice(0, i), z.slice(i)]);
        } else {
            data.push('');
        }
    }
    if (data.length < 5) {
        return null;
    }
    var dd = data[0], mm = data[1], yy = data[2], tm = data[3], tz = data[4], tmp;
    if (!(dd && mm && yy)) {
        return null;
    }
    mm = mm.toLowerCase();
    if (MONTHS.indexOf(mm) < 0) {
        tmp = dd.toLowerCase();
        dd = mm;
        mm = tmp;
        if (MONTHS.indexOf(mm) < 0) {
            return null;
        }
    }
    mm = MONTHS.indexOf(mm) + 1;
    if (mm > 12) {
        mm -= 12;
    }
    if (dd.slice(-1) === ',') {
        dd = dd.slice(0, -1);
    }
    if (yy.indexOf(':') > 0) {
        tmp = yy;
        yy = tm;
        tm = tmp;
    }
    if (yy.slice(-1) === ',') {
        yy = yy.slice(0, -1);
        if (!yy) {
            return null;
        }
    }
    if (!/^\d/.test(yy)) {
        tmp = yy;
        yy = tz;
        tz = tmp;
    }
    if (tm.slice(-1) === ',') {
        tm = tm.slice(0, -1);
    }
    var parts = tm.split(':');
    if (parts.length === 1 && tm.indexOf('.') >= 0) {
        parts = tm.split('.');
    }
    if (parts.length === 2) {
        parts.push('0');
    } else if (parts.length !== 3) {
        return null;
    }
    var n = [yy, dd, parts[0], parts[1], parts[2]].map(pyInt);
    if (n.indexOf(null) >= 0) {
        return null;
    }
    var year = n[0], day = n[1], hh = n[2], mi = n[3], ss = n[4];
    if (year < 100) {
        year += year > 68 ? 1900 : 2000;
    }
    var off = null;
    tz = tz.toUpperCase();
    if (ZONES.hasOwnProperty(tz)) {
        off = ZONES[tz];
    } else {
        off = pyInt(tz);
        if (off === 0 && tz.charAt(0) === '-') {
            off = null;
        }
    }
    if (off) {
        var sign = off < 0 ? -1 : 1;
        off = Math.abs(off);
        off = sign * (Math.floor(off / 100) * 3600 + (off % 100) * 60);
    }
    // datetime()'s checks
    var mdays = [31, (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 29 : 28,
                 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if (year < 1 || year > 9999 || day < 1 || day > mdays[mm - 1] || hh > 23 || mi > 59
        || ss > 59 || hh < 0 || mi < 0 || ss < 0 || (off !== null && Math.abs(off) >= 86400)) {
        return null;
    }
    return Date.UTC(year, mm - 1, day, hh, mi, ss) / 1000 - (off || 0);
}

export default {route, handle, headers, agentHeaders, status};
