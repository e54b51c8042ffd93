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
    note TEXT
);
INSERT INTO "alerts" VALUES(1,'fall','emergency','acknowledged','bed:SR-E-101','sunrise','east','East wing','r101','101','SR-E-101','E-0001','Mary Jones','radar-101','gw-east',0,1.79637733340245604515e+09,1.79637733344618439669e+09,NULL,1,1.79637733340245604515e+09,NULL,'nurse',1.79637733378437471389e+09,'console',NULL,NULL,NULL,NULL);
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
INSERT INTO "audit" VALUES(1,1.79637733316809892654e+09,'system','registry.seeded',NULL,'config','{"site": 1, "zone": 2, "room": 3, "bed": 3, "resident": 2, "gateway": 2, "device": 5, "binding": 2}');
INSERT INTO "audit" VALUES(2,1.79637733317511177066e+09,'system','push_keys_created',NULL,'push','{"public_key": "BMfzca5TYss1zHq7jj0f1jK1wDHhkoCNelugh-y1_JWb75UsqG03FxSXe9hWnMGQyXjP3e1bS6_KTmNjSJtY7Hs", "subscriptions_dropped": 0}');
INSERT INTO "audit" VALUES(3,1.79637733344618439669e+09,'system','opened',1,NULL,'{"device": "radar-101", "event": "fall", "value": true}');
INSERT INTO "audit" VALUES(4,1.79637733345038557051e+09,'system','escalation_step',1,NULL,'{"phase": "escalate", "n": 0, "step": 0, "targets": ["on_duty_zone"]}');
INSERT INTO "audit" VALUES(5,1.79637733345038557051e+09,'system','notification',1,NULL,'{"attempt": 1, "target": "on_duty_zone", "recipient": null, "recipient_kind": null, "result": "no_recipient", "detail": "nobody on duty for this zone"}');
INSERT INTO "audit" VALUES(6,1.79637733372964048385e+09,'nurse','login',NULL,'web','{"client": "127.0.0.1"}');
INSERT INTO "audit" VALUES(7,1.79637733378437471389e+09,'nurse','acknowledged',1,'console','{}');
CREATE TABLE device_health (
    device TEXT PRIMARY KEY,
    online INTEGER NOT NULL,
    last_seen REAL,
    battery REAL,
    rssi INTEGER,
    reported_at REAL NOT NULL
);
CREATE TABLE device_state (
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    PRIMARY KEY (device, name)
);
INSERT INTO "device_state" VALUES('radar-102','heart_rate','61',1.79637733340245652194e+09);
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
INSERT INTO "escalation_steps" VALUES(1,1,'escalate',0,0,'day','["on_duty_zone"]',1.79637733344618439669e+09,1.79637733345038557051e+09);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
INSERT INTO "events" VALUES(1,'radar-101','fall','true',1.79637733340245604515e+09,1.79637733344446682932e+09,0);
CREATE TABLE gateway_sequence (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (site, gateway)
);
INSERT INTO "gateway_sequence" VALUES('sunrise','gw-east','0123abcd',2);
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
INSERT INTO "notifications" VALUES(1,1,1,0,'escalate','on_duty_zone',NULL,NULL,NULL,NULL,NULL,NULL,NULL,1.79637733345038557051e+09,'no_recipient','nobody on duty for this zone');
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
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE push_vapid (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
INSERT INTO "readings" VALUES(1,'radar-102','heart_rate','61',1.79637733340245652194e+09,1.79637733344446682932e+09,0);
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
CREATE TABLE registry_site (id TEXT PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO "registry_site" VALUES('sunrise','Sunrise Care Home');
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
INSERT INTO "timers" VALUES('device_silent','radar-101',1.79637793344446682931e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','radar-102',1.79637793344446682931e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','button-101',1.79646733316999173161e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','smoke-101',1.79646733316999173161e+09,'{}');
INSERT INTO "timers" VALUES('device_silent','radar-201',1.79637793316999173163e+09,'{}');
INSERT INTO "timers" VALUES('gateway_silent','sunrise/gw-east',1.79637823344446682927e+09,'{}');
INSERT INTO "timers" VALUES('gateway_silent','sunrise/gw-west',1.79637823316999173167e+09,'{}');
INSERT INTO "timers" VALUES('escalate','1',1.79637913378437471386e+09,'{"phase": "realert", "n": 0}');
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
INSERT INTO "users" VALUES('nurse','Night Nurse','{"residents": [], "role": "staff", "sites": ["*"], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$rMzmfeANYHej7DFMB0GS5A$/k8pUkNlslSqxx7Qdo2QRe7WCF8UjbnmUDJL9dE/Y34','config',0,0,1.79637733315821552281e+09,1.79637733315821552281e+09);
INSERT INTO "users" VALUES('admin',NULL,'{"residents": [], "role": "admin", "sites": [], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$ut/rnurzdHdgbbKftJb+eg$b0DMOFTY65LfXN6ZfsXQ2b8Sj5hq2CuCJSBZLdkJNvw','config',0,0,1.79637733315821552281e+09,1.79637733315821552281e+09);
INSERT INTO "users" VALUES('supervisor',NULL,'{"residents": [], "role": "supervisor", "sites": ["sunrise"], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$SQxZbFp/uxr9D41TZcNRNA$xQF8Ryf03TIlEyQnQ/bSHmmxL/vSfD9QfVSFIMNqg+k','config',0,0,1.79637733315821552281e+09,1.79637733315821552281e+09);
INSERT INTO "users" VALUES('installer',NULL,'{"residents": [], "role": "installer", "sites": ["sunrise"], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$Zm16GjRIQdjkwqenSFrNHA$pHDJa4dUqob+v77kqe2eLADw2vGXoRckqhxLcU4zgRI','config',0,0,1.79637733315821552281e+09,1.79637733315821552281e+09);
INSERT INTO "users" VALUES('east-nurse',NULL,'{"residents": [], "role": "staff", "sites": [], "zones": ["sunrise/east"]}','$argon2id$v=19$m=65536,t=3,p=4$ujohjBlmpdRWC0Pu1nuheA$qI15gkildWcyBXL5aIE4S6l3WhPYXRZ7j0Kr4u/XebQ','config',0,0,1.79637733315821552281e+09,1.79637733315821552281e+09);
INSERT INTO "users" VALUES('daughter','Anne Jones','{"residents": ["E-0001"], "role": "family", "sites": [], "zones": []}','$argon2id$v=19$m=65536,t=3,p=4$ZCuiNuSL40FY4XYa+9faQA$YspPKTKwLcbKxJQxdxb439qQEKnR7qbz7YXXXnrGft8','config',0,0,1.79637733315821552281e+09,1.79637733315821552281e+09);
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
CREATE INDEX readings_device_time ON readings (device, name, sensed_at);
CREATE INDEX events_device_time ON events (device, sensed_at);
CREATE UNIQUE INDEX alerts_one_active
    ON alerts (rule, subject) WHERE state != 'resolved';
CREATE UNIQUE INDEX registry_binding_open_bed
    ON registry_binding (bed) WHERE "end" IS NULL;
CREATE UNIQUE INDEX registry_binding_open_resident
    ON registry_binding (resident) WHERE "end" IS NULL;
CREATE INDEX notifications_alert ON notifications (alert_id, id);
CREATE INDEX notifications_pending ON notifications (result) WHERE result = 'pending';
CREATE INDEX push_subscriptions_user ON push_subscriptions (username, id);
COMMIT;
