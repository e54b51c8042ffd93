BEGIN TRANSACTION;
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    subject TEXT NOT NULL,
    site TEXT NOT NULL,
    zone TEXT,
    zone_name TEXT,
    room TEXT,
    room_name TEXT,
    bed TEXT,
    resident_code TEXT,
    resident_name TEXT,
    device TEXT,
    gateway TEXT,
    test INTEGER NOT NULL DEFAULT 0,
    sensed_at REAL NOT NULL,
    opened_at REAL NOT NULL,
    late_s REAL,
    count INTEGER NOT NULL DEFAULT 1,
    last_triggered_at REAL NOT NULL,
    cleared_at REAL,
    acknowledged_by TEXT,
    acknowledged_at REAL,
    acknowledged_via TEXT,
    resolved_by TEXT,
    resolved_at REAL,
    outcome TEXT,
    note TEXT,
    nobody_reached_at REAL
);
INSERT INTO "alerts" VALUES(1,'fall','emergency','acknowledged','bed:SR-E-101','sunrise','east','East wing','r101','101','SR-E-101','E-0001','Mary Jones','radar-101','gw-east',0,1.79641721897532439231e+09,1.79641721901951360697e+09,NULL,1,1.79641721897532439231e+09,NULL,'nurse',1.7964172202984540462e+09,'console',NULL,NULL,NULL,NULL,1.79641721902414870258e+09);
INSERT INTO "alerts" VALUES(2,'call_button','emergency','resolved','bed:SR-E-101','sunrise','east','East wing','r101','101','SR-E-101','E-0001','Mary Jones','button-101','gw-east',0,1.79641721897532439231e+09,1.79641721902102851869e+09,NULL,1,1.79641721897532439231e+09,NULL,'nurse',1.79641722030151033398e+09,'console','nurse',1.79641722030723547938e+09,'assisted_no_injury','came to help',1.79641721902763462064e+09);
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    username TEXT,
    grant_json TEXT,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id INTEGER,
    channel TEXT,
    detail TEXT NOT NULL
);
INSERT INTO "audit" VALUES(1,1.79641721855820703504e+09,'system','registry.seeded',NULL,'config','{"site": 1, "zone": 2, "room": 3, "bed": 3, "resident": 2, "gateway": 2, "device": 5, "binding": 2}');
INSERT INTO "audit" VALUES(2,1.79641721856813764575e+09,'system','push_keys_created',NULL,'push','{"public_key": "BD4QYwxItXZlDq5FPt8-voedbRXwg4tZXzHcuW2tQm-p23IAF_xltBGblIxtD-o-N747G1ePGIXUtKrXwWgmthw", "subscriptions_dropped": 0}');
INSERT INTO "audit" VALUES(3,1.79641721901951360697e+09,'system','opened',1,NULL,'{"device": "radar-101", "event": "fall", "value": true}');
INSERT INTO "audit" VALUES(4,1.79641721902102851869e+09,'system','opened',2,NULL,'{"device": "button-101", "event": "call_button", "value": true}');
INSERT INTO "audit" VALUES(5,1.79641721902174687384e+09,'system','escalation_step',1,NULL,'{"phase": "escalate", "n": 0, "step": 0, "targets": ["on_duty_zone"]}');
INSERT INTO "audit" VALUES(6,1.79641721902174687384e+09,'system','notification',1,NULL,'{"attempt": 1, "target": "on_duty_zone", "recipient": null, "recipient_kind": null, "result": "no_recipient", "detail": "no one on duty in East wing"}');
INSERT INTO "audit" VALUES(7,1.79641721902414870258e+09,'system','nobody_reached',1,NULL,'{"step_id": 1, "step": 0, "phase": "escalate", "reason": "no one on duty in East wing"}');
INSERT INTO "audit" VALUES(8,1.79641721902461290365e+09,'system','escalation_step',1,NULL,'{"phase": "fallback", "n": 0, "step": 0, "targets": ["charge_nurse", "site_managers", "site_consoles"]}');
INSERT INTO "audit" VALUES(9,1.79641721902461290365e+09,'system','notification',1,NULL,'{"attempt": 2, "target": "charge_nurse", "recipient": null, "recipient_kind": null, "result": "no_recipient", "detail": "no charge nurse on duty"}');
INSERT INTO "audit" VALUES(10,1.79641721902568531031e+09,'system','notification',1,'console','{"attempt": 3, "target": "site_managers", "recipient": "admin", "recipient_kind": "user", "result": "failed", "detail": "no console open"}');
INSERT INTO "audit" VALUES(11,1.79641721902568531031e+09,'system','notification',1,'console','{"attempt": 4, "target": "site_managers", "recipient": "supervisor", "recipient_kind": "user", "result": "failed", "detail": "no console open"}');
INSERT INTO "audit" VALUES(12,1.79641721902568531031e+09,'system','notification',1,'console','{"attempt": 5, "target": "site_consoles", "recipient": "site:sunrise", "recipient_kind": "consoles", "result": "failed", "detail": "no console that shows this alert is open"}');
INSERT INTO "audit" VALUES(13,1.79641721902653956417e+09,'system','escalation_step',2,NULL,'{"phase": "escalate", "n": 0, "step": 0, "targets": ["on_duty_zone"]}');
INSERT INTO "audit" VALUES(14,1.79641721902653956417e+09,'system','notification',2,NULL,'{"attempt": 6, "target": "on_duty_zone", "recipient": null, "recipient_kind": null, "result": "no_recipient", "detail": "no one on duty in East wing"}');
INSERT INTO "audit" VALUES(15,1.79641721902763462064e+09,'system','nobody_reached',2,NULL,'{"step_id": 3, "step": 0, "phase": "escalate", "reason": "no one on duty in East wing"}');
INSERT INTO "audit" VALUES(16,1.79641721902802228927e+09,'system','escalation_step',2,NULL,'{"phase": "fallback", "n": 0, "step": 0, "targets": ["charge_nurse", "site_managers", "site_consoles"]}');
INSERT INTO "audit" VALUES(17,1.79641721902802228927e+09,'system','notification',2,NULL,'{"attempt": 7, "target": "charge_nurse", "recipient": null, "recipient_kind": null, "result": "no_recipient", "detail": "no charge nurse on duty"}');
INSERT INTO "audit" VALUES(18,1.79641721902900171285e+09,'system','notification',2,'console','{"attempt": 8, "target": "site_managers", "recipient": "admin", "recipient_kind": "user", "result": "failed", "detail": "no console open"}');
INSERT INTO "audit" VALUES(19,1.79641721902900171285e+09,'system','notification',2,'console','{"attempt": 9, "target": "site_managers", "recipient": "supervisor", "recipient_kind": "user", "result": "failed", "detail": "no console open"}');
INSERT INTO "audit" VALUES(20,1.79641721902900171285e+09,'system','notification',2,'console','{"attempt": 10, "target": "site_consoles", "recipient": "site:sunrise", "recipient_kind": "consoles", "result": "failed", "detail": "no console that shows this alert is open"}');
INSERT INTO "audit" VALUES(21,1.79641722028943109511e+09,'nurse','login',NULL,'web','{"client": "127.0.0.1"}');
INSERT INTO "audit" VALUES(22,1.7964172202984540462e+09,'nurse','acknowledged',1,'console','{}');
INSERT INTO "audit" VALUES(23,1.79641722030151033398e+09,'nurse','acknowledged',2,'console','{}');
INSERT INTO "audit" VALUES(24,1.79641722030723547938e+09,'nurse','resolved',2,'console','{"outcome": "assisted_no_injury", "note": "came to help"}');
INSERT INTO "audit" VALUES(25,1.79641722031908297532e+09,'nurse','push_subscribed',NULL,'push','{"host": "fcm.googleapis.com", "user_agent": "python-httpx/0.29.0", "dropped_oldest": 0}');
INSERT INTO "audit" VALUES(26,1.79641722047041320796e+09,'installer','login',NULL,'web','{"client": "127.0.0.1"}');
CREATE TABLE device_health (
    device TEXT PRIMARY KEY,
    online INTEGER NOT NULL,
    last_seen REAL,
    battery REAL,
    rssi INTEGER,
    reported_at REAL NOT NULL
);
INSERT INTO "device_health" VALUES('radar-101',1,1.79641721897532439231e+09,88.0,-60,1796417218.975);
CREATE TABLE device_state (
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    PRIMARY KEY (device, name)
);
INSERT INTO "device_state" VALUES('radar-102','heart_rate','61',1.79641721897532439231e+09);
CREATE TABLE escalation_steps (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    phase TEXT NOT NULL,
    n INTEGER NOT NULL,
    step INTEGER NOT NULL,
    policy TEXT NOT NULL,
    targets TEXT NOT NULL,
    due_at REAL NOT NULL,
    at REAL NOT NULL,
    UNIQUE (alert_id, phase, n)
);
INSERT INTO "escalation_steps" VALUES(1,1,'escalate',0,0,'day','["on_duty_zone"]',1.79641721901951360697e+09,1.79641721902174687384e+09);
INSERT INTO "escalation_steps" VALUES(2,1,'fallback',0,0,'day','["charge_nurse", "site_managers", "site_consoles"]',1.79641721902414870258e+09,1.79641721902461290365e+09);
INSERT INTO "escalation_steps" VALUES(3,2,'escalate',0,0,'day','["on_duty_zone"]',1.79641721902102851869e+09,1.79641721902653956417e+09);
INSERT INTO "escalation_steps" VALUES(4,2,'fallback',0,0,'day','["charge_nurse", "site_managers", "site_consoles"]',1.79641721902763462064e+09,1.79641721902802228927e+09);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
INSERT INTO "events" VALUES(1,'radar-101','fall','true',1.79641721897532439231e+09,1.79641721901811838146e+09,0);
INSERT INTO "events" VALUES(2,'button-101','call_button','true',1.79641721897532439231e+09,1.79641721901811838146e+09,0);
CREATE TABLE gateway_sequence (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (site, gateway)
);
INSERT INTO "gateway_sequence" VALUES('sunrise','gw-east','0123abcd',4);
CREATE TABLE gateway_status (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    state TEXT NOT NULL,
    bdseq INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    step_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    phase TEXT NOT NULL,
    target TEXT NOT NULL,
    channel TEXT,
    recipient_kind TEXT,
    recipient TEXT,
    recipient_name TEXT,
    phone TEXT,
    email TEXT,
    recipient_user TEXT,
    at REAL NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
INSERT INTO "notifications" VALUES(1,1,1,0,'escalate','on_duty_zone',NULL,NULL,NULL,NULL,NULL,NULL,NULL,1.79641721902174687384e+09,'no_recipient','no one on duty in East wing');
INSERT INTO "notifications" VALUES(2,1,2,0,'fallback','charge_nurse',NULL,NULL,NULL,NULL,NULL,NULL,NULL,1.79641721902461290365e+09,'no_recipient','no charge nurse on duty');
INSERT INTO "notifications" VALUES(3,1,2,0,'fallback','site_managers','console','user','admin','admin',NULL,NULL,'admin',1.79641721902568531031e+09,'failed','no console open');
INSERT INTO "notifications" VALUES(4,1,2,0,'fallback','site_managers','console','user','supervisor','supervisor',NULL,NULL,'supervisor',1.79641721902568531031e+09,'failed','no console open');
INSERT INTO "notifications" VALUES(5,1,2,0,'fallback','site_consoles','console','consoles','site:sunrise','every console at the site',NULL,NULL,NULL,1.79641721902568531031e+09,'failed','no console that shows this alert is open');
INSERT INTO "notifications" VALUES(6,2,3,0,'escalate','on_duty_zone',NULL,NULL,NULL,NULL,NULL,NULL,NULL,1.79641721902653956417e+09,'no_recipient','no one on duty in East wing');
INSERT INTO "notifications" VALUES(7,2,4,0,'fallback','charge_nurse',NULL,NULL,NULL,NULL,NULL,NULL,NULL,1.79641721902802228927e+09,'no_recipient','no charge nurse on duty');
INSERT INTO "notifications" VALUES(8,2,4,0,'fallback','site_managers','console','user','admin','admin',NULL,NULL,'admin',1.79641721902900171285e+09,'failed','no console open');
INSERT INTO "notifications" VALUES(9,2,4,0,'fallback','site_managers','console','user','supervisor','supervisor',NULL,NULL,'supervisor',1.79641721902900171285e+09,'failed','no console open');
INSERT INTO "notifications" VALUES(10,2,4,0,'fallback','site_consoles','console','consoles','site:sunrise','every console at the site',NULL,NULL,NULL,1.79641721902900171285e+09,'failed','no console that shows this alert is open');
CREATE TABLE push_subscriptions (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    last_result TEXT,
    last_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    confirmed_at REAL
);
INSERT INTO "push_subscriptions" VALUES(1,'nurse','https://fcm.googleapis.com/fcm/send/upgrade-test','BOhg4U8saJ3PtyF-3bOOetwxDkLgsjfOHVNnr_3KukMWRql6QdqJ4ux5cIqcyHwbLvIsPx5MxMdXhW97z9xiIiI','vdBYCFJkq0c8TOQd-7SnkA','python-httpx/0.29.0',1.79641722031908297532e+09,NULL,NULL,0,NULL);
CREATE TABLE push_vapid (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at REAL NOT NULL
);
INSERT INTO "push_vapid" VALUES(1,'-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/TeuulHXybYX/8HQ
q4ryqI9GuKznJLTQNu7hpCK7qhahRANCAAQ+EGMMSLV2ZQ6uRT7fPr6HnW0V8IOL
WV8x3LltrUJvqdtyABf8ZbQRm5SMbQ/qPje+OxtXjxiF1LSq18FoJrYc
-----END PRIVATE KEY-----
','BD4QYwxItXZlDq5FPt8-voedbRXwg4tZXzHcuW2tQm-p23IAF_xltBGblIxtD-o-N747G1ePGIXUtKrXwWgmthw',1.79641721856813764575e+09);
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
INSERT INTO "readings" VALUES(1,'radar-102','heart_rate','61',1.79641721897532439231e+09,1.79641721901811838146e+09,0);
CREATE TABLE registry_bed (
    code TEXT PRIMARY KEY, site TEXT NOT NULL, room TEXT NOT NULL, label TEXT
);
INSERT INTO "registry_bed" VALUES('SR-E-101','sunrise','r101',NULL);
INSERT INTO "registry_bed" VALUES('SR-E-102','sunrise','r102',NULL);
INSERT INTO "registry_bed" VALUES('SR-W-201','sunrise','r201',NULL);
CREATE TABLE registry_binding (
    resident TEXT NOT NULL, bed TEXT NOT NULL, "start" REAL NOT NULL, "end" REAL,
    start_reason TEXT NOT NULL, end_reason TEXT,
    PRIMARY KEY (resident, "start")
);
INSERT INTO "registry_binding" VALUES('E-0001','SR-E-101',0.0,NULL,'config',NULL);
INSERT INTO "registry_binding" VALUES('E-0002','SR-E-102',0.0,NULL,'config',NULL);
CREATE TABLE registry_device (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL, profile TEXT NOT NULL,
    bed TEXT, room TEXT, role TEXT,
    CHECK ((bed IS NULL) != (room IS NULL))
);
INSERT INTO "registry_device" VALUES('radar-101','sunrise','gw-east','seeed-mr60fda1','SR-E-101',NULL,NULL);
INSERT INTO "registry_device" VALUES('radar-102','sunrise','gw-east','seeed-mr60fda1','SR-E-102',NULL,NULL);
INSERT INTO "registry_device" VALUES('button-101','sunrise','gw-east','shelly-blu-button1','SR-E-101',NULL,NULL);
INSERT INTO "registry_device" VALUES('smoke-101','sunrise','gw-east','bthome-smoke',NULL,'r101',NULL);
INSERT INTO "registry_device" VALUES('radar-201','sunrise','gw-west','seeed-mr60fda1','SR-W-201',NULL,NULL);
CREATE TABLE registry_gateway (
    site TEXT NOT NULL, id TEXT NOT NULL, name TEXT, PRIMARY KEY (site, id)
);
INSERT INTO "registry_gateway" VALUES('sunrise','gw-east',NULL);
INSERT INTO "registry_gateway" VALUES('sunrise','gw-west',NULL);
CREATE TABLE registry_resident (
    code TEXT PRIMARY KEY, name TEXT NOT NULL, care_level TEXT,
    flags TEXT NOT NULL, contacts TEXT NOT NULL
);
INSERT INTO "registry_resident" VALUES('E-0001','Mary Jones',NULL,'[]','[]');
INSERT INTO "registry_resident" VALUES('E-0002','Li Wei',NULL,'[]','[]');
CREATE TABLE registry_room (
    site TEXT NOT NULL, id TEXT NOT NULL, zone TEXT NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL, PRIMARY KEY (site, id)
);
INSERT INTO "registry_room" VALUES('sunrise','r101','east','101','bedroom');
INSERT INTO "registry_room" VALUES('sunrise','r102','east','102','bedroom');
INSERT INTO "registry_room" VALUES('sunrise','r201','west','201','bedroom');
CREATE TABLE registry_site (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT);
INSERT INTO "registry_site" VALUES('sunrise','Sunrise Care Home',NULL);
CREATE TABLE registry_zone (
    site TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (site, id)
);
INSERT INTO "registry_zone" VALUES('sunrise','east','East wing','care_home');
INSERT INTO "registry_zone" VALUES('sunrise','west','West wing','care_home');
CREATE TABLE timers (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    due_at REAL NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
INSERT INTO "timers" VALUES('device_silent','radar-101',1.79641781901811838149e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','radar-201',1.79641781856127882009e+09,'{}');
INSERT INTO "timers" VALUES('gateway_silent','sunrise/gw-west',1.79641811856127882004e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','button-101',1.79650721901811838152e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','smoke-101',1.79650721856127881998e+09,'{}');
INSERT INTO "timers" VALUES('gateway_silent','sunrise/gw-east',1.79641811901811838145e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','radar-102',1.79641781901811838149e+09,'{}');
INSERT INTO "timers" VALUES('escalate','1',1.79641902029845404627e+09,'{"phase": "realert", "n": 0}');
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    display_name TEXT,
    grant_json TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    session_gen INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
INSERT INTO "users" VALUES('nurse','Night Nurse','{"residents": [], "role": "staff", "sites": ["*"], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$f4m/39imgtn9Q85narzmsw$uGG8n6ZoEif5Ke2UysCaZJ6c5v2chIL9h8E7T9URyN4','config',0,0,1.79641721854470109943e+09,1.79641721854470109943e+09);
INSERT INTO "users" VALUES('admin',NULL,'{"residents": [], "role": "admin", "sites": [], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$aGfekaHHLDzVWokkXfxOvA$2DE5HCL3uQDAA5v6fBZb0JjNTzmoe1CFnYrOAc9IGCE','config',0,0,1.79641721854470109943e+09,1.79641721854470109943e+09);
INSERT INTO "users" VALUES('supervisor',NULL,'{"residents": [], "role": "supervisor", "sites": ["sunrise"], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$gpZRJC/qYUvWCgvpl37Jzg$OvLpQ+V80pNBZJ4VjfVm7OOUQjbsTRFbjSzPCjplbAo','config',0,0,1.79641721854470109943e+09,1.79641721854470109943e+09);
INSERT INTO "users" VALUES('installer',NULL,'{"residents": [], "role": "installer", "sites": ["sunrise"], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$xHBewSHdGb/K9cDTnJyi/g$W8hjaOabkcyU24L3iQbIoh1TUBsVAuOoaJ5egUtFXuc','config',0,0,1.79641721854470109943e+09,1.79641721854470109943e+09);
INSERT INTO "users" VALUES('east-nurse',NULL,'{"residents": [], "role": "staff", "sites": [], "zones": ["sunrise/east"]}','$argon2id$v=19$m=65536,t=3,p=4$RKGtwYDNJ3t0Rtx9LlDTQw$UdJEZ3sCnSFuvoYYMe6jyZctQ5ihNTGYI8Jg78UeLwE','config',0,0,1.79641721854470109943e+09,1.79641721854470109943e+09);
INSERT INTO "users" VALUES('daughter','Anne Jones','{"residents": ["E-0001"], "role": "family", "sites": [], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$30QjS81IG8FdzLMxHzkHGQ$iP3m2Hdmjc8msdBjoK4c7krhcxN2Tcto1akLeZO4jTc','config',0,0,1.79641721854470109943e+09,1.79641721854470109943e+09);
CREATE TABLE walktest_results (
    test_id INTEGER NOT NULL REFERENCES walktests (id),
    device TEXT NOT NULL,
    passed_at REAL NOT NULL,
    rssi INTEGER,
    battery REAL,
    trigger TEXT NOT NULL,
    PRIMARY KEY (test_id, device)
);
CREATE TABLE walktests (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    gateway TEXT,
    started_by TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_by TEXT,
    ended_at REAL
);
INSERT INTO "walktests" VALUES(1,'sunrise','gw-west','installer',1.796417220486518383e+09,NULL,NULL);
CREATE TABLE web_sessions (
            id_sha256 TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            session_gen INTEGER NOT NULL,
            client TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL
        );
INSERT INTO "web_sessions" VALUES('6242c637b6b5d4a5ef99a25a956b2db748848f0160625b56c26c2ecdc3d9895d','nurse',0,'127.0.0.1',1.79641722028981137273e+09,1.79641722028981137273e+09);
INSERT INTO "web_sessions" VALUES('601c14acd47f66d78172db06771bc46b99573f7118dd0f556e2e5609d1344833','installer',0,'127.0.0.1',1.79641722047103118901e+09,1.79641722047103118901e+09);
CREATE INDEX readings_device_time ON readings (device, name, sensed_at);
CREATE INDEX events_device_time ON events (device, sensed_at);
CREATE UNIQUE INDEX alerts_one_active
    ON alerts (rule, subject) WHERE state != 'resolved';
CREATE INDEX web_sessions_user ON web_sessions (username);
CREATE INDEX audit_alert ON audit (alert_id, action);
CREATE UNIQUE INDEX registry_binding_open_bed
    ON registry_binding (bed) WHERE "end" IS NULL;
CREATE UNIQUE INDEX registry_binding_open_resident
    ON registry_binding (resident) WHERE "end" IS NULL;
CREATE INDEX notifications_alert ON notifications (alert_id, id);
CREATE INDEX notifications_pending ON notifications (result) WHERE result = 'pending';
CREATE INDEX push_subscriptions_user ON push_subscriptions (username, id);
COMMIT;
