DROP INDEX billing_accounts_trial_end_idx;
DROP TABLE billing_usage_notices;
DROP TABLE billing_trial_notices;
