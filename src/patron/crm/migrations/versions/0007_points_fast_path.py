"""A PL/pgSQL function for an API earn or redemption in one round trip (PostgreSQL).

An API write through the ORM costs eleven round trips (claim the idempotency key, read
the customer, the programme, lock the account, read the lots, write the entry, the lot or
allocations, the balance, remember the answer, BEGIN, COMMIT), each a wait for the
database and a hop of the worker. ``patron_points_write`` does the common case of the
two busiest writes in one call, in one transaction, exactly as the Python ledger does it
(:mod:`patron.crm.services.loyalty.fast_path` says what it covers). Wherever the case is
uncommon it writes nothing and answers NULL ("not me"), and the caller takes the Python
path, which stays the one definition of the rules.

SQLite has no such function and keeps the Python path.

Revision ID: 0007
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None

SIGNATURE = (
    "patron_points_write(text, bigint, text, text, text, integer, integer, bigint, bigint,"
    " text, timestamptz, text, text)"
)

FUNCTION = r"""
CREATE FUNCTION patron_points_write(
    p_kind text,             -- 'earn' or 'redeem'
    p_user_id bigint,        -- who writes (the key's scope, the entry's actor)
    p_actor_name text,
    p_key text,              -- the Idempotency-Key, its request's fingerprint,
    p_fingerprint text,      -- and the advisory lock that holds it while it runs
    p_lock_class integer,
    p_lock_id integer,
    p_customer_id bigint,
    p_points bigint,         -- > 0, checked by the caller
    p_reason text,           -- checked and trimmed by the caller
    p_now timestamptz,
    p_created_at text,       -- p_now as the API writes it
    p_refusal text,          -- a redemption's refusal, '{balance}' to be filled in
    OUT status integer,      -- NULL: not the common case, nothing written
    OUT body json,           -- NULL with 409: the key is in use; with 422: reused
    OUT replayed boolean
) LANGUAGE plpgsql AS $$
DECLARE
    v_found record;
    v_merged bigint;
    v_expiry integer;
    v_basis text;
    v_account bigint;
    v_balance bigint;
    v_debt bigint;
    v_entry bigint;
    v_lot record;
    v_left bigint;
    v_share bigint;
    v_lots bigint[] := '{}';
    v_shares bigint[] := '{}';
    v_after bigint;
BEGIN
    replayed := false;
    -- The key, as patron.crm.services.idempotency.claim takes it.
    IF NOT pg_try_advisory_xact_lock(p_lock_class, p_lock_id) THEN
        status := 409;
        RETURN;
    END IF;
    SELECT k.fingerprint, k.status_code, k.response INTO v_found
        FROM idempotency_keys AS k WHERE k.user_id = p_user_id AND k.key = p_key;
    IF FOUND THEN
        IF v_found.fingerprint <> p_fingerprint THEN
            status := 422;
        ELSE
            status := v_found.status_code;
            body := v_found.response;
            replayed := true;
        END IF;
        RETURN;
    END IF;

    -- The customer (not merged away) and the account (open, without a refund debt).
    SELECT c.merged_into_id INTO v_merged FROM customers AS c WHERE c.id = p_customer_id;
    IF NOT FOUND OR v_merged IS NOT NULL THEN
        RETURN;
    END IF;
    IF p_kind = 'earn' THEN
        SELECT p.expiry_months, p.tier_basis INTO v_expiry, v_basis
            FROM loyalty_programs AS p WHERE p.id = 1;
        IF NOT FOUND OR v_basis <> 'spend' THEN
            RETURN;
        END IF;
    ELSIF p_kind <> 'redeem' THEN
        RETURN;
    END IF;
    SELECT a.id, a.balance, a.debt INTO v_account, v_balance, v_debt
        FROM loyalty_accounts AS a WHERE a.customer_id = p_customer_id FOR UPDATE;
    IF NOT FOUND OR v_debt <> 0 THEN
        RETURN;
    END IF;

    IF p_kind = 'earn' THEN
        v_after := v_balance + p_points;
        INSERT INTO loyalty_entries (account_id, kind, points, balance_after, shortfall, reason,
                                     source_type, actor_id, actor_name, created_at)
            VALUES (v_account, 'earn', p_points, v_after, 0, p_reason, 'api', p_user_id,
                    p_actor_name, p_now)
            RETURNING id INTO v_entry;
        -- Calendar months on the UTC clock, the day clamped to the month's end
        -- (patron.crm.services.loyalty.rules.add_months).
        INSERT INTO loyalty_lots (account_id, entry_id, points, remaining, earned_at, expires_at)
            VALUES (v_account, v_entry, p_points, p_points, p_now,
                    CASE WHEN v_expiry IS NOT NULL THEN
                        ((p_now AT TIME ZONE 'UTC') + make_interval(months => v_expiry))
                            AT TIME ZONE 'UTC'
                    END);
    ELSE
        IF v_balance < p_points THEN
            -- Refused before any lot is read, as the Python path refuses; remembered.
            status := 409;
            body := json_build_object(
                'code', 'insufficient_points',
                'message', replace(p_refusal, '{balance}',
                                   regexp_replace(v_balance::text, '(\d)(?=(\d{3})+$)', '\1,',
                                                  'g')),
                'field', 'points');
            INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response,
                                          created_at)
                VALUES (p_user_id, p_key, p_fingerprint, status, body, p_now);
            RETURN;
        END IF;
        -- First to expire first, never-expiring last (the index ix_loyalty_lots_open's
        -- order); a lot already due must be expired first, which the Python path does.
        v_left := p_points;
        FOR v_lot IN
            SELECT l.id, l.remaining, l.expires_at FROM loyalty_lots AS l
                WHERE l.account_id = v_account AND l.remaining > 0
                ORDER BY l.expires_at, l.id
        LOOP
            IF v_lot.expires_at IS NOT NULL AND v_lot.expires_at <= p_now THEN
                RETURN;
            END IF;
            v_share := least(v_lot.remaining, v_left);
            v_lots := v_lots || v_lot.id;
            v_shares := v_shares || v_share;
            v_left := v_left - v_share;
            EXIT WHEN v_left = 0;
        END LOOP;
        IF v_left <> 0 THEN  -- the lots do not cover the balance: let the Python path say so
            RETURN;
        END IF;
        v_after := v_balance - p_points;
        INSERT INTO loyalty_entries (account_id, kind, points, balance_after, shortfall, reason,
                                     source_type, actor_id, actor_name, created_at)
            VALUES (v_account, 'redeem', -p_points, v_after, 0, p_reason, 'api', p_user_id,
                    p_actor_name, p_now)
            RETURNING id INTO v_entry;
        UPDATE loyalty_lots AS l SET remaining = l.remaining - t.share
            FROM unnest(v_lots, v_shares) AS t(lot_id, share) WHERE l.id = t.lot_id;
        INSERT INTO loyalty_allocations (entry_id, lot_id, points)
            SELECT v_entry, t.lot_id, t.share FROM unnest(v_lots, v_shares) AS t(lot_id, share);
    END IF;
    UPDATE loyalty_accounts SET balance = v_after, updated_at = p_now WHERE id = v_account;

    status := 201;
    body := json_build_object(
        'balance', v_after,
        'entry', json_build_object(
            'id', v_entry,
            'kind', p_kind,
            'points', CASE WHEN p_kind = 'earn' THEN p_points ELSE -p_points END,
            'balance_after', v_after,
            'shortfall', 0,
            'reason', p_reason,
            'source_type', 'api',
            'source_id', NULL,
            'order_id', NULL,
            'reward_id', NULL,
            'actor', nullif(p_actor_name, ''),
            'created_at', p_created_at));
    INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response, created_at)
        VALUES (p_user_id, p_key, p_fingerprint, status, body, p_now);
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
