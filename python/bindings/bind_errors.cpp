// The core's typed errors, each mapped once to the fsgen.errors class of the same name.
#include <cstring>

#include "bindings.hpp"
#include "fsgen/error.hpp"

namespace fsgen_bindings {

void bind_errors(nb::module_&) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    auto raise = [](const char* name, const char* what) {
      nb::object cls = nb::module_::import_("fsgen.errors").attr(name);
      // Messages may quote bytes from a damaged file: never fail on invalid UTF-8.
      PyObject* message = PyUnicode_DecodeUTF8(what, static_cast<Py_ssize_t>(std::strlen(what)), "replace");
      if (message == nullptr) {
        PyErr_Clear();
        PyErr_SetString(cls.ptr(), "(unprintable error message)");
        return;
      }
      PyErr_SetObject(cls.ptr(), message);
      Py_DECREF(message);
    };
    try {
      std::rethrow_exception(p);
    } catch (const fsgen::ModelLoadError& e) {
      raise("ModelLoadError", e.what());
    } catch (const fsgen::IncompatibleVocabError& e) {
      raise("IncompatibleVocabError", e.what());
    } catch (const fsgen::TemplateError& e) {
      raise("TemplateError", e.what());
    } catch (const fsgen::ContextOverflowError& e) {
      raise("ContextOverflowError", e.what());
    } catch (const fsgen::GenerationError& e) {
      raise("GenerationError", e.what());
    } catch (const fsgen::InvalidArgumentError& e) {
      raise("InvalidArgumentError", e.what());
    } catch (const fsgen::Error& e) {
      raise("FsgenError", e.what());
    }
  });
}

}  // namespace fsgen_bindings
