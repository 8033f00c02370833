/* SPDX-License-Identifier: MIT */
/*
 * util/jsontext.c, the JSON writer of vmmd's frequent answers: separators,
 * escaping, numbers, nesting errors, and member text kept from an earlier
 * writing (vm.list's cached entries). Every output is parsed back by json-c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "util/jsontext.h"

/* The text written so far; the writer is freed. */
static char *finish(struct jtext *j)
{
	assert_false(jt_failed(j));
	return jt_take(j, NULL);
}

static void assert_parses(const char *text)
{
	json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	json_object_put(o);
}

static void test_separators_and_values(void **state)
{
	struct jtext j;
	char *text;

	jt_init(&j);
	jt_object_begin(&j);
	jt_key(&j, "a");
	jt_int(&j, -5);
	jt_key(&j, "b");
	jt_array_begin(&j);
	jt_bool(&j, true);
	jt_null(&j);
	jt_number(&j, 1.5, 3);
	jt_array_end(&j);
	jt_key(&j, "c");
	jt_string(&j, "x");
	jt_object_end(&j);
	text = finish(&j);
	assert_string_equal(text, "{\"a\":-5,\"b\":[true,null,1.500],\"c\":\"x\"}");
	assert_parses(text);
	free(text);
}

static void test_strings_are_escaped(void **state)
{
	struct jtext j;
	char *text;

	jt_init(&j);
	jt_string(&j, "q\"b\\n\n\x01 end");
	text = finish(&j);
	assert_string_equal(text, "\"q\\\"b\\\\n\\u000a\\u0001 end\"");
	assert_parses(text);
	free(text);
}

static void test_unbalanced_nesting_fails(void **state)
{
	struct jtext j;

	jt_init(&j);
	jt_object_end(&j);
	assert_true(jt_failed(&j));
	jt_free(&j);
}

/* Member text is placed as if its members were written there: a comma
 * before it when the object has members, none when it is the first, and a
 * comma after it before the next member. */
static void test_member_text_takes_its_place(void **state)
{
	static const char kept[] = "\"name\":\"vm-1\",\"state\":\"running\"";
	struct jtext j;
	char *text;

	jt_init(&j);
	jt_array_begin(&j);
	for (int i = 0; i < 2; i++) {
		jt_object_begin(&j);
		jt_members_text(&j, kept, strlen(kept));
		jt_key(&j, "pid");
		jt_int(&j, 7 + i);
		jt_object_end(&j);
	}
	jt_object_begin(&j);
	jt_key(&j, "first");
	jt_int(&j, 1);
	jt_members_text(&j, kept, strlen(kept));
	jt_members_text(&j, "", 0);
	jt_object_end(&j);
	jt_array_end(&j);
	text = finish(&j);
	assert_string_equal(text,
			    "[{\"name\":\"vm-1\",\"state\":\"running\",\"pid\":7},"
			    "{\"name\":\"vm-1\",\"state\":\"running\",\"pid\":8},"
			    "{\"first\":1,\"name\":\"vm-1\",\"state\":\"running\"}]");
	assert_parses(text);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_separators_and_values),
		cmocka_unit_test(test_strings_are_escaped),
		cmocka_unit_test(test_unbalanced_nesting_fails),
		cmocka_unit_test(test_member_text_takes_its_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
