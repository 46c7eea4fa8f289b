DROP TABLE sms_credit_purchases;
