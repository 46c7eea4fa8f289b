DROP TRIGGER groups_record_gateway_leftovers ON groups;
DROP FUNCTION billing_record_gateway_leftovers();
DROP TABLE billing_gateway_leftovers;
